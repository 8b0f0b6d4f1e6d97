#!/usr/bin/env python3
"""Writes a SentencePiece vocabulary as a GGUF file and the ids SentencePiece itself gives for the
tokenizer tests' corpus, for the GGUF tokenizer's SentencePiece path (tests/runner/tokenizer/test_gguf_vocab.cpp).

- A BPE model is trained with the `sentencepiece` package (PyPI) in Llama's and Mistral's settings (byte
  fallback, identity normalization, a dummy prefix, digits split, whitespace-only pieces allowed) on the
  corpus and Debian's GPL-3 text, so that its pieces and scores are SentencePiece's own.
- spm-vocab.gguf: its pieces, scores and types written as llama.cpp's convert_hf_to_gguf.py writes a
  SentencePiece vocabulary (tokenizer.ggml.model "llama", UNKNOWN, CONTROL and BYTE types, BOS added),
  with the `gguf` package; no tensors.
- spm-vocab.json: for each corpus case, SentencePiece's ids (without BOS) and its decoding of them; null
  for the case that is not UTF-8.

usage: make_spm_vocab.py CORPUS OUT_DIR   (pip install sentencepiece==0.2.3 gguf==0.17.1)
"""
import io
import json
import sys
from pathlib import Path

import sentencepiece as spm
from gguf import GGUFWriter

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def read_corpus(path):
    """The cases as text; None for a case that is not UTF-8 (SentencePiece takes only text)."""
    cases = []
    for raw in path.read_bytes().split(b"\n~~~~\n"):
        try:
            cases.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            cases.append(None)
    return cases


def main():
    corpus_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    cases = read_corpus(corpus_path)
    training = "\n".join(c for c in cases if c is not None) + "\n" + Path("/usr/share/common-licenses/GPL-3").read_text(encoding="utf-8")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training.splitlines()), model_writer=model, model_type="bpe", vocab_size=1200,
        byte_fallback=True, normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
        character_coverage=1.0, num_threads=1, minloglevel=2, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(UNKNOWN if sp.is_unknown(i) else CONTROL if sp.is_control(i) else
                     UNUSED if sp.is_unused(i) else BYTE if sp.is_byte(i) else NORMAL)
    writer = GGUFWriter(str(out / "spm-vocab.gguf"), "llama")
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_unk_token_id(sp.unk_id())
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    golden = [None if text is None else {"ids": sp.encode(text), "decoded": sp.decode(sp.encode(text))}
              for text in cases]
    (out / "spm-vocab.json").write_text(json.dumps({"vocab_size": sp.vocab_size(), "cases": golden},
                                                   ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
