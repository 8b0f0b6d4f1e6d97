#!/usr/bin/env python3
"""The logits the runner's CPU engine must give for the tiny GGUF models (make_gguf_models.py) on its
default path, where every product with a quantized matrix (ggml's block types) takes activations
rounded to 8 bits as llama.cpp's CPU backend rounds them: per token and 32 elements, in float32, a
scale d = max|x| / 127 (0 below the smallest normal float) and q = x * (1 / d) rounded half to even.
The same float64 forward pass as make_gguf_models.py over gguf's dequantization of the files as they
are, with that rounding applied to each quantized product's input; F32, F16 and BF16 products keep
their inputs. Independent of our C++: it reads the committed GGUF files with gguf's own reader.

Rounding decisions use float32 activations computed here in float64: an element within about 1e-7 of a
half step may round the other way than in the engine, which moves a product by one step of one element.

reference-int8.json, per quantized model: prompt_ids, logits (after the prompt, then after each of 4
greedy tokens) and 8 greedy_ids, as reference.json, and greedy_margins: at each greedy step, how far the
chosen token's logit lies above the next one's. Where that is within the 8-bit path's tolerance, float32
and float64 may choose differently, and the tokens after it are no longer comparable.

usage: make_gguf_int8_reference.py GGUF_MODELS_DIR   (pip install gguf==0.17.1 numpy)
"""
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q, GGUFReader, quants

import make_gguf_models as m

FLOAT_TYPES = (Q.F32, Q.F16, Q.BF16)


def rounded(h):
    """h [tokens, n] as the engine's 8-bit activations stand for it: d * q per 32 elements."""
    x = h.astype(np.float32).reshape(h.shape[0], -1, 32)
    amax = np.abs(x).max(axis=-1, keepdims=True)
    d = amax / np.float32(127)
    inverse = np.where(d >= np.finfo(np.float32).tiny, np.float32(1) / np.maximum(d, np.finfo(np.float32).tiny),
                       np.float32(0)).astype(np.float32)
    q = np.rint(x * inverse)
    return (d.astype(np.float64) * q.astype(np.float64)).reshape(h.shape)


def load(path, arch):
    """The file's weights as make_gguf_models.py's forward takes them, and each weight's ggml type."""
    reader = GGUFReader(str(path))
    weights, types = {}, {}
    for t in reader.tensors:
        shape = tuple(int(v) for v in reversed(t.shape))
        values = quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(shape)
        if arch == "llama" and t.name.endswith(("attn_q.weight", "attn_k.weight")):
            values = m.unpermute(values, m.N_HEAD if "attn_q" in t.name else m.N_HEAD_KV)
        weights[t.name] = values
        types[t.name] = t.tensor_type
    return weights, types


def reference(path, name):
    arch, default, _, _, _ = m.MODELS[name]
    eps = 1e-5 if arch == "llama" else 1e-6
    weights, types = load(path, arch)
    inv_freq = 1.0 / (m.ROPE_THETA[arch] ** (np.arange(0, m.HEAD_DIM, 2, dtype=np.float64) / m.HEAD_DIM))
    if "rope_freqs.weight" in weights:
        inv_freq = inv_freq / weights["rope_freqs.weight"]

    def inputs(h, tensor):
        return h if types[tensor] in FLOAT_TYPES else rounded(h)

    # Each position's rounding depends only on its own activations, which depend only on earlier
    # positions: running every position again per step equals the engine's incremental decode.
    ids, logits, margins = list(m.PROMPT), [], []
    for step in range(m.GREEDY):
        last = m.forward(weights, arch, ids, inv_freq, eps, inputs)[-1]
        if step <= m.DECODE_STEPS:
            logits.append([round(float(v), 6) for v in last])
        top = np.sort(last)[::-1]
        margins.append(round(float(top[0] - top[1]), 6))
        ids.append(int(np.argmax(last)))
    return {"prompt_ids": m.PROMPT, "logits": logits, "greedy_ids": ids[len(m.PROMPT):], "greedy_margins": margins}


def main(folder):
    folder = Path(folder)
    out = {}
    for name, (_, default, _, _, _) in m.MODELS.items():
        if default in FLOAT_TYPES:
            continue
        print(f"{name} ...", file=sys.stderr)
        out[name] = reference(folder / f"{name}.gguf", name)
    (folder / "reference-int8.json").write_text(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
