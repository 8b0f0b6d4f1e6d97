#!/usr/bin/env python3
"""Writes the tiny GGUF models the runner's GGUF tests run, with the `gguf` package from PyPI (llama.cpp's
own writer and its numpy dequantization), and the logits they must give, from a float64 numpy forward
pass written here with Hugging Face's conventions: independent of llama.cpp's C and of our engine.

Each model: 3 layers (so that a GPU budget of two streaming slots cannot hold them all), 256 wide, 4 query heads over 2 KV heads of 64, an MLP of 256, a 320-token
byte-level BPE vocabulary (trained below on a few sentences; tokenizer.ggml.* as llama.cpp's converter
writes them), in one of the block layouts the runner reads:

  llama-q4_k_m   Q4_K, with attn_v, ffn_down and output in Q6_K (what `ollama pull` serves as Q4_K_M),
                 and Llama 3.1's RoPE scaling as a rope_freqs tensor
  llama-q8_0     Q8_0, output tied to the embeddings
  llama-q4_0     Q4_0
  llama-q5_k     Q5_K
  llama-f16      F16, tied
  llama-bf16     BF16
  qwen2-q8_0     Q8_0 with q/k/v biases, tied
  qwen3-q6_k     Q6_K with q/k norms
Norms and biases are F32, as llama.cpp writes them. Q8_0, Q4_0, F16 and BF16 come from gguf's own
quantize; K-quants have no quantizer in gguf, so their blocks are random bytes with sane f16 scales (the
70B benchmark model is written the same way). Either way the reference reads the weights back through
gguf's dequantize: it computes with exactly the values stored.

llama's q and k rows are stored permuted as convert_hf_to_gguf.py permutes them (pairs of RoPE's
dimensions made adjacent); the reference undoes that and rotates Hugging Face's halves, so the runner's
adjacent-pair RoPE is checked against the layout Hugging Face models have.

reference.json, per model: prompt_ids, logits (after the prompt, then after each of 4 greedy tokens)
and 8 greedy_ids, the format of tests/fixtures/models/*/reference.json.

usage: make_gguf_models.py OUT_DIR   (pip install gguf==0.17.1 numpy)
"""
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as Q, GGUFWriter, TokenType, quants

N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, HEAD_DIM, N_FF = 256, 3, 4, 2, 64, 256
VOCAB = 320
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
PROMPT = [317, 40, 101, 7, 256, 31, 200, 5, 77, 150, 63, 12]
DECODE_STEPS, GREEDY = 4, 8
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Layer streaming keeps only a few transformer layers in memory at a time.",
    "def forward(x):\n\treturn rmsnorm(x) * weight\n",
    "ROCm runs on AMD Radeon RX 7900 XTX graphics cards with 24 GB of VRAM.",
    "Numbers: 0 1 12 123 1234 12345; contractions: don't, I'm, WE'LL.",
]

# name -> (architecture, default type, {tensor suffix: type}, tied, rope_freqs)
MODELS = {
    "llama-q4_k_m": ("llama", Q.Q4_K, {"attn_v.weight": Q.Q6_K, "ffn_down.weight": Q.Q6_K, "output.weight": Q.Q6_K},
                     False, True),
    "llama-q8_0": ("llama", Q.Q8_0, {}, True, False),
    "llama-q4_0": ("llama", Q.Q4_0, {}, False, False),
    "llama-q5_k": ("llama", Q.Q5_K, {}, False, False),
    "llama-f16": ("llama", Q.F16, {}, True, False),
    "llama-bf16": ("llama", Q.BF16, {}, False, False),
    "qwen2-q8_0": ("qwen2", Q.Q8_0, {}, True, False),
    "qwen3-q6_k": ("qwen3", Q.Q6_K, {}, False, False),
}
ROPE_THETA = {"llama": 500000.0, "qwen2": 1000000.0, "qwen3": 1000000.0}


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: every byte as a printable character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def train_vocab():
    """Byte-level BPE over the corpus' words: the 256 byte tokens, merges up to VOCAB - 3, then specials."""
    alphabet = bytes_to_unicode()
    words = Counter()
    for line in CORPUS:
        for word in line.replace("\n", " \n ").split(" "):
            if word:
                words[tuple(alphabet[b] for b in (" " + word).encode())] += 1
    tokens = [alphabet[b] for b in range(256)]
    merges = []
    while len(tokens) < VOCAB - len(SPECIALS):
        pairs = Counter()
        for word, count in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += count
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        tokens.append(a + b)
        merged = Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    while len(tokens) < VOCAB - len(SPECIALS):
        tokens.append(f"<unused{len(tokens)}>")
    return tokens + SPECIALS, merges


def llama3_freq_factors():
    """Llama 3.1's scaling as llama.cpp's converter writes it into rope_freqs (factor 8 over 16 positions)."""
    factor, low, high, original = 8.0, 1.0, 4.0, 16
    freqs = 1.0 / (ROPE_THETA["llama"] ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM))
    low_wavelen, high_wavelen = original / low, original / high
    factors = []
    for freq in freqs:
        wavelen = 2 * np.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: each head's rows reordered so RoPE's pairs are adjacent."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# Where each K-quant keeps its f16 scales, and the scale that keeps its weights near +-0.1.
K_SCALES = {Q.Q4_K: ([0, 2], 2e-4, 7.5), Q.Q5_K: ([0, 2], 1e-4, 15.5), Q.Q6_K: ([208], 2.5e-5, 0)}


def random_k_blocks(rng, qtype, rows, cols):
    block, size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(rows * cols // block, size), dtype=np.uint8)
    offsets, d_scale, min_ratio = K_SCALES[qtype]
    d = rng.uniform(0.5, 1.5, size=blocks.shape[0]) * d_scale
    blocks[:, offsets[0]:offsets[0] + 2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    if len(offsets) > 1:  # dmin, centring the weights
        dmin = d * min_ratio * rng.uniform(0.8, 1.2, size=blocks.shape[0])
        blocks[:, offsets[1]:offsets[1] + 2] = dmin.astype(np.float16).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, cols // block * size)


def stored(rng, values, qtype):
    """The tensor as the file holds it: gguf's quantize, or random K-quant blocks."""
    if qtype == Q.F32:
        return values.astype(np.float32)
    if qtype in K_SCALES:
        return random_k_blocks(rng, qtype, *values.shape)
    return quants.quantize(values.astype(np.float32), qtype)


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, inv_freq, positions):
    """Hugging Face's rotate-half: dimension i turns with i + head_dim / 2.   x: [tokens, heads, head_dim]"""
    angles = positions[:, None] * inv_freq[None, :]
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


def forward(w, arch, ids, inv_freq, eps, inputs=lambda h, name: h):
    """Logits of every position, float64, from the dequantized weights. inputs(h, name) gives the
    activations that multiply weight `name` (make_gguf_int8_reference.py rounds them to 8 bits)."""
    x = w["token_embd.weight"][ids]
    n = len(ids)
    positions = np.arange(n, dtype=np.float64)
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        h = rmsnorm(x, w[p + "attn_norm.weight"], eps)
        q, k, v = (inputs(h, p + f"attn_{t}.weight") @ w[p + f"attn_{t}.weight"].T for t in "qkv")
        if arch == "qwen2":
            q, k, v = q + w[p + "attn_q.bias"], k + w[p + "attn_k.bias"], v + w[p + "attn_v.bias"]
        q = q.reshape(n, N_HEAD, HEAD_DIM)
        k = k.reshape(n, N_HEAD_KV, HEAD_DIM)
        v = v.reshape(n, N_HEAD_KV, HEAD_DIM)
        if arch == "qwen3":
            q = rmsnorm(q, w[p + "attn_q_norm.weight"], eps)
            k = rmsnorm(k, w[p + "attn_k_norm.weight"], eps)
        q, k = rope(q, inv_freq, positions), rope(k, inv_freq, positions)
        group = N_HEAD // N_HEAD_KV
        out = np.empty((n, N_HEAD, HEAD_DIM))
        for hd in range(N_HEAD):
            scores = q[:, hd, :] @ k[:, hd // group, :].T / np.sqrt(HEAD_DIM) + mask
            probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            out[:, hd, :] = probs @ v[:, hd // group, :]
        x = x + inputs(out.reshape(n, -1), p + "attn_output.weight") @ w[p + "attn_output.weight"].T
        h = rmsnorm(x, w[p + "ffn_norm.weight"], eps)
        gate = inputs(h, p + "ffn_gate.weight") @ w[p + "ffn_gate.weight"].T
        up = inputs(h, p + "ffn_up.weight") @ w[p + "ffn_up.weight"].T
        x = x + inputs(gate / (1 + np.exp(-gate)) * up, p + "ffn_down.weight") @ w[p + "ffn_down.weight"].T
    x = rmsnorm(x, w["output_norm.weight"], eps)
    head = "output.weight" if "output.weight" in w else "token_embd.weight"
    return inputs(x, head) @ w[head].T


def make(out, name, rng, tokens, merges):
    arch, default, overrides, tied, rope_freqs = MODELS[name]
    eps = 1e-5 if arch == "llama" else 1e-6
    shapes = {"token_embd.weight": (VOCAB, N_EMBD), "output_norm.weight": (N_EMBD,)}
    if not tied:
        shapes["output.weight"] = (VOCAB, N_EMBD)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        shapes.update({p + "attn_norm.weight": (N_EMBD,), p + "attn_q.weight": (N_HEAD * HEAD_DIM, N_EMBD),
                       p + "attn_k.weight": (N_HEAD_KV * HEAD_DIM, N_EMBD),
                       p + "attn_v.weight": (N_HEAD_KV * HEAD_DIM, N_EMBD),
                       p + "attn_output.weight": (N_EMBD, N_HEAD * HEAD_DIM), p + "ffn_norm.weight": (N_EMBD,),
                       p + "ffn_gate.weight": (N_FF, N_EMBD), p + "ffn_up.weight": (N_FF, N_EMBD),
                       p + "ffn_down.weight": (N_EMBD, N_FF)})
        if arch == "qwen2":
            for t, width in (("q", N_HEAD), ("k", N_HEAD_KV), ("v", N_HEAD_KV)):
                shapes[p + f"attn_{t}.bias"] = (width * HEAD_DIM,)
        if arch == "qwen3":
            shapes[p + "attn_q_norm.weight"] = shapes[p + "attn_k_norm.weight"] = (HEAD_DIM,)

    w = GGUFWriter(str(out / f"{name}.gguf"), arch)
    w.add_name(name)
    w.add_context_length(4096)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_freq_base(ROPE_THETA[arch])
    w.add_layer_norm_rms_eps(eps)
    if arch == "llama":
        w.add_rope_dimension_count(HEAD_DIM)
        w.add_vocab_size(VOCAB)
    w.add_file_type(int(default))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe" if arch == "llama" else "qwen2")
    w.add_token_list(tokens)
    w.add_token_types([TokenType.CONTROL if t in SPECIALS else TokenType.NORMAL for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index(SPECIALS[0]))
    w.add_eos_token_id(tokens.index(SPECIALS[1]))
    w.add_eot_token_id(tokens.index(SPECIALS[2]))
    w.add_add_bos_token(arch == "llama")

    weights = {}
    inv_freq = 1.0 / (ROPE_THETA[arch] ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM))
    if rope_freqs:
        factors = llama3_freq_factors()
        w.add_tensor("rope_freqs.weight", factors, raw_dtype=Q.F32)
        inv_freq = inv_freq / factors.astype(np.float64)
    for tname, shape in shapes.items():
        if len(shape) == 1:
            values = (1 + 0.1 * rng.standard_normal(shape)) if tname.endswith("norm.weight") else 0.05 * rng.standard_normal(shape)
            qtype = Q.F32
        else:
            values = 0.08 * rng.standard_normal(shape)
            qtype = next((t for suffix, t in overrides.items() if tname.endswith(suffix)), default)
        data = stored(rng, values, qtype)
        w.add_tensor(tname, data, raw_shape=shape if qtype in (Q.F32, Q.F16) else None, raw_dtype=qtype)
        back = quants.dequantize(data, qtype).astype(np.float64).reshape(shape)
        if arch == "llama" and tname.endswith(("attn_q.weight", "attn_k.weight")):
            back = unpermute(back, N_HEAD if "attn_q" in tname else N_HEAD_KV)
        weights[tname] = back
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    ids, logits = list(PROMPT), []
    for step in range(GREEDY):
        last = forward(weights, arch, ids, inv_freq, eps)[-1]
        if step <= DECODE_STEPS:
            logits.append([round(float(v), 6) for v in last])
        ids.append(int(np.argmax(last)))
    return {"prompt_ids": PROMPT, "logits": logits, "greedy_ids": ids[len(PROMPT):]}


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokens, merges = train_vocab()
    assert len(tokens) == VOCAB
    reference = {}
    for i, name in enumerate(MODELS):
        print(f"writing {name} ...", file=sys.stderr)
        reference[name] = make(out, name, np.random.default_rng(100 + i), tokens, merges)
    (out / "reference.json").write_text(json.dumps(reference) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
