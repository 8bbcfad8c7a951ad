#!/usr/bin/env python3
"""Compute which tests of ONNX's operator conformance suite (the backend "node" tests that
scripts/fetch-data.sh puts in data/onnx-node/) are in elide's scope.

Usage: python3 scripts/onnx_node_scope.py [SUITE_DIR]   (default: $ELIDE_DATA/onnx-node or data/onnx-node)

Writes tests/onnx-node/in-scope.txt (one test name per line, sorted) and
tests/onnx-node/out-of-scope.txt (name<TAB>reason, sorted) and prints the counts by reason.

Nothing is hand-picked: every rule is a pattern on the test folder's name or a fact read from
its model.onnx (node domains and op types, the graph's input/output value types). Out of scope:

  ai.onnx.ml      ops of the ai.onnx.ml domain (test_ai_onnx_ml_*)
  training        ai.onnx.preview.training ops (Adagrad, Adam, Momentum incl. nesterov, Gradient)
  training-mode   Dropout / BatchNormalization run in training mode
  random          random-number ops (RandomNormal, RandomUniform, *Like, Bernoulli, Multinomial)
  signal          DFT, STFT, the window functions (Blackman/Hann/Hamming), MelWeightMatrix
  text            StringNormalizer, RegexFullMatch, StringConcat, StringSplit, tokenizers, TfIdf
  sequence-type   sequence values (graph inputs/outputs of sequence type, or Sequence* ops)
  optional-type   optional values (graph inputs/outputs of optional type, or Optional* ops)
  string-type     string tensors (elem_type 8) as graph inputs/outputs
  expanded        the *_expanded variants (the same test with the op replaced by its function body)

A test that matches several rules is listed under the first one in that order, so "expanded"
counts only the expanded variants that are not already out for another reason.
"""

import os
import re
import sys
from collections import Counter

import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "onnx-node")

# Op sets per category (domain "" is ai.onnx).
TRAINING_OPS = {"Adagrad", "Adam", "Momentum", "Gradient"}
RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Bernoulli", "Multinomial"}
SIGNAL_OPS = {"DFT", "STFT", "BlackmanWindow", "HannWindow", "HammingWindow", "MelWeightMatrix"}
TEXT_OPS = {"StringNormalizer", "RegexFullMatch", "StringConcat", "StringSplit", "Tokenizer",
            "TfIdfVectorizer"}
SEQUENCE_OPS = {"SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
                "SequenceInsert", "SequenceLength", "SequenceMap", "SplitToSequence",
                "ConcatFromSequence"}
OPTIONAL_OPS = {"Optional", "OptionalGetElement", "OptionalHasElement"}
STRING = onnx.TensorProto.STRING  # 8

# Name patterns per category: the op names as the suite spells them in test names.
NAME_RULES = [
    ("ai.onnx.ml", re.compile(r"^test_ai_onnx_ml_")),
    ("training", re.compile(r"^test_(adagrad|adam|momentum|nesterov_momentum|gradient)(_|$)")),
    ("training-mode", re.compile(r"(^test_training_|_training_mode(_|$))")),
    ("random", re.compile(r"^test_(random_?(normal|uniform)(_?like)?|bernoulli|multinomial)(_|$)")),
    ("signal", re.compile(r"^test_(dft|stft|(blackman|hann|hamming)window|melweightmatrix)(_|$)")),
    ("text", re.compile(r"^test_(strnormalizer|string_?normalizer|regex_full_match|string_concat"
                        r"|string_split|tokenizer|tfidfvectorizer)(_|$)")),
    ("sequence-type", re.compile(r"^test_(sequence_|split_to_sequence|concat_from_sequence)")),
    ("optional-type", re.compile(r"^test_optional_")),
]
ORDER = [r for r, _ in NAME_RULES] + ["string-type", "expanded"]


def all_nodes(graph):
    """Nodes of a graph and of every subgraph (If/Loop/Scan bodies) in it."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from all_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from all_nodes(g)


def type_kinds(tp, acc):
    """Collect 'sequence', 'optional', 'string' for a TypeProto, looking inside containers."""
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        if tp.tensor_type.elem_type == STRING:
            acc.add("string")
    elif which == "sparse_tensor_type":
        if tp.sparse_tensor_type.elem_type == STRING:
            acc.add("string")
    elif which == "sequence_type":
        acc.add("sequence")
        type_kinds(tp.sequence_type.elem_type, acc)
    elif which == "optional_type":
        acc.add("optional")
        type_kinds(tp.optional_type.elem_type, acc)
    elif which == "map_type":
        acc.add("map")
    return acc


def model_reasons(path):
    """Out-of-scope reasons read from the model itself."""
    model = onnx.load(path)
    reasons = set()
    for node in all_nodes(model.graph):
        domain = node.domain or "ai.onnx"
        op = node.op_type
        if domain == "ai.onnx.ml":
            reasons.add("ai.onnx.ml")
        elif domain == "ai.onnx.preview.training" or (domain == "ai.onnx" and op in TRAINING_OPS):
            reasons.add("training")
        elif domain == "ai.onnx":
            if op in RANDOM_OPS:
                reasons.add("random")
            if op in SIGNAL_OPS:
                reasons.add("signal")
            if op in TEXT_OPS:
                reasons.add("text")
            if op in SEQUENCE_OPS:
                reasons.add("sequence-type")
            if op in OPTIONAL_OPS:
                reasons.add("optional-type")
            # Training mode: Dropout's third input (training_mode) given, or
            # BatchNormalization's training_mode attribute set.
            if op == "Dropout" and len(node.input) >= 3 and node.input[2]:
                reasons.add("training-mode")
            if op == "BatchNormalization" and any(
                    a.name == "training_mode" and a.i != 0 for a in node.attribute):
                reasons.add("training-mode")
    kinds = set()
    for vi in list(model.graph.input) + list(model.graph.output):
        type_kinds(vi.type, kinds)
    if "sequence" in kinds:
        reasons.add("sequence-type")
    if "optional" in kinds:
        reasons.add("optional-type")
    if "string" in kinds:
        reasons.add("string-type")
    if "map" in kinds:
        reasons.add("ai.onnx.ml")
    return reasons


def classify(name, suite):
    reasons = {r for r, pat in NAME_RULES if pat.search(name)}
    if "_expanded" in name:
        reasons.add("expanded")
    reasons |= model_reasons(os.path.join(suite, name, "model.onnx"))
    for r in ORDER:
        if r in reasons:
            return r
    return None


def main():
    data = os.environ.get("ELIDE_DATA") or os.path.join(ROOT, "data")  # as scripts/fetch-data.sh
    suite = sys.argv[1] if len(sys.argv) > 1 else os.path.join(data, "onnx-node")
    if not os.path.isdir(suite):
        sys.exit(f"onnx_node_scope: no suite at {suite} (run scripts/fetch-data.sh)")
    tests = sorted(d for d in os.listdir(suite)
                   if os.path.isfile(os.path.join(suite, d, "model.onnx")))
    if not tests:
        sys.exit(f"onnx_node_scope: no <test>/model.onnx under {suite}")
    in_scope, out = [], []
    for name in tests:
        reason = classify(name, suite)
        if reason is None:
            in_scope.append(name)
        else:
            out.append((name, reason))
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "in-scope.txt"), "w") as f:
        f.writelines(n + "\n" for n in in_scope)
    with open(os.path.join(OUT_DIR, "out-of-scope.txt"), "w") as f:
        f.writelines(f"{n}\t{r}\n" for n, r in out)
    counts = Counter(r for _, r in out)
    print(f"{len(tests)} tests in {suite}")
    print(f"{len(in_scope):5d}  in scope  -> tests/onnx-node/in-scope.txt")
    print(f"{len(out):5d}  out of scope  -> tests/onnx-node/out-of-scope.txt")
    for r in ORDER:
        if counts[r]:
            print(f"         {counts[r]:5d}  {r}")


if __name__ == "__main__":
    main()
