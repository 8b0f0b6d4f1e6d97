#!/usr/bin/env python3
"""Writes the GGUF files the reader's tests parse, with the `gguf` package from PyPI (llama.cpp's own
writer), and expected.json beside them: every metadata value and, per tensor, its type, dimensions in
ggml's order, byte length and SHA-256, so that the C++ reader is checked against an independent writer.

- types.gguf: one metadata value of every GGUF value type, arrays of strings, int32 and float32, and a
  2 x 256 tensor of each type the runner is to read (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K),
  their blocks random bytes (the reader checks layout, not values).
- blocks.gguf: for each block type, q.<type>, 4 rows of 512 weights in random blocks whose f16 scales are
  set to sane values, and f.<type>, the same rows as F32 from gguf's own dequantize (numpy, written
  apart from llama.cpp's C): what the runner's block kernels must give.
- aligned64.gguf: general.alignment 64, two tensors.
- q5_0-tensor.gguf: Llama 3.1 8B's settings with blk.0.attn_q.weight in Q5_0, a type the runner does
  not run; short-rope-freqs.gguf: the same settings with a rope_freqs.weight of 3 values.
- llama3-config.gguf, qwen3-config.gguf: model settings as llama.cpp's converter writes them for
  Llama 3.1 8B and Qwen3 8B (their shapes; a 16-token vocabulary), through the writer's own helpers, so
  that the key names are llama.cpp's; qwen3's has an output.weight tensor (an untied head).

usage: make_gguf_fixtures.py OUT_DIR   (pip install gguf==0.17.1 numpy)
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFWriter, quants

TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"]
ROWS, COLS = 2, 256


def tensor_bytes(rng, qtype):
    block, size = GGML_QUANT_SIZES[qtype]
    if qtype == GGMLQuantizationType.F32:
        return rng.standard_normal((ROWS, COLS)).astype(np.float32)
    if qtype == GGMLQuantizationType.F16:
        return rng.standard_normal((ROWS, COLS)).astype(np.float16)
    return rng.integers(0, 256, size=(ROWS, COLS // block * size), dtype=np.uint8)


# Where each block type keeps its f16 scales (ggml-common.h's block_q8_0 ... block_q6_K).
SCALE_OFFSETS = {"Q8_0": [0], "Q4_0": [0], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def random_blocks(rng, name, rows, cols):
    qtype = GGMLQuantizationType[name]
    block, size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(rows * cols // block, size), dtype=np.uint8)
    for offset in SCALE_OFFSETS[name]:
        scales = rng.uniform(0.001, 0.05, size=blocks.shape[0]).astype(np.float16)
        blocks[:, offset:offset + 2] = scales.view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, cols // block * size)


def random_blocks_q5_0(rng):
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType.Q5_0]
    return rng.integers(0, 256, size=(2, 256 // block * size), dtype=np.uint8)


def write(path, alignment, tensors, metadata, arch="llama"):
    w = GGUFWriter(str(path), arch)
    if alignment != 32:
        w.add_custom_alignment(alignment)
    for add in metadata:
        add(w)
    for name, array, qtype in tensors:
        w.add_tensor(name, array, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_arch(path, arch, tensors, metadata):
    write(path, 32, tensors, metadata, arch)


def describe(path):
    """What an independent reader (gguf's own) finds: metadata and tensors, for expected.json."""
    r = GGUFReader(str(path))
    tensors = []
    for t in r.tensors:
        data = bytes(np.ascontiguousarray(t.data).view(np.uint8).reshape(-1))
        tensors.append({"name": t.name, "type": t.tensor_type.name, "dims": [int(d) for d in t.shape],
                        "bytes": int(t.n_bytes), "sha256": hashlib.sha256(data).hexdigest(),
                        "offset": int(t.data_offset)})
    return {"alignment": int(r.alignment), "data_start": int(r.data_offset), "tensors": tensors}


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    values = [
        lambda w: w.add_uint8("test.u8", 200), lambda w: w.add_int8("test.i8", -100),
        lambda w: w.add_uint16("test.u16", 60000), lambda w: w.add_int16("test.i16", -30000),
        lambda w: w.add_uint32("test.u32", 4000000000), lambda w: w.add_int32("test.i32", -2000000000),
        lambda w: w.add_float32("test.f32", 0.5), lambda w: w.add_bool("test.bool", True),
        lambda w: w.add_string("test.string", "héllo\nworld"), lambda w: w.add_uint64("test.u64", 1 << 40),
        lambda w: w.add_int64("test.i64", -(1 << 40)), lambda w: w.add_float64("test.f64", -2.25),
        lambda w: w.add_array("test.strings", ["a", "", "<0x0A>", "Ġthe"]),
        lambda w: w.add_array("test.ints", [1, -2, 3]),
        lambda w: w.add_array("test.floats", [0.25, -1.5]),
    ]
    tensors = [(f"t.{name.lower()}", tensor_bytes(rng, GGMLQuantizationType[name]), GGMLQuantizationType[name])
               for name in TYPES]
    write(out / "types.gguf", 32, tensors, values)
    write(out / "aligned64.gguf", 64, tensors[:2], [lambda w: w.add_uint32("test.u32", 7)])
    tokens = [f"t{i}" for i in range(16)]
    llama3 = [
        lambda w: w.add_context_length(131072), lambda w: w.add_embedding_length(4096),
        lambda w: w.add_block_count(32), lambda w: w.add_feed_forward_length(14336),
        lambda w: w.add_head_count(32), lambda w: w.add_head_count_kv(8),
        lambda w: w.add_rope_freq_base(500000.0), lambda w: w.add_layer_norm_rms_eps(1e-5),
        lambda w: w.add_rope_dimension_count(128), lambda w: w.add_tokenizer_model("gpt2"),
        lambda w: w.add_token_list(tokens), lambda w: w.add_bos_token_id(0),
        lambda w: w.add_eos_token_id(9), lambda w: w.add_eot_token_id(11),
    ]
    write_arch(out / "llama3-config.gguf", "llama", [], llama3)
    qwen3 = [
        lambda w: w.add_context_length(40960), lambda w: w.add_embedding_length(4096),
        lambda w: w.add_block_count(36), lambda w: w.add_feed_forward_length(12288),
        lambda w: w.add_head_count(32), lambda w: w.add_head_count_kv(8), lambda w: w.add_key_length(128),
        lambda w: w.add_value_length(128), lambda w: w.add_rope_freq_base(1000000.0),
        lambda w: w.add_layer_norm_rms_eps(1e-6), lambda w: w.add_token_list(tokens),
        lambda w: w.add_eos_token_id(15),
    ]
    write_arch(out / "qwen3-config.gguf", "qwen3",
               [("output.weight", rng.standard_normal((2, 32)).astype(np.float32), GGMLQuantizationType.F32)], qwen3)
    blocks = []
    for name in SCALE_OFFSETS:
        q = random_blocks(rng, name, 4, 512)
        blocks.append((f"q.{name.lower()}", q, GGMLQuantizationType[name]))
        f = quants.dequantize(q, GGMLQuantizationType[name]).astype(np.float32)
        blocks.append((f"f.{name.lower()}", f, GGMLQuantizationType.F32))
    write(out / "blocks.gguf", 32, blocks, [])
    q5 = random_blocks_q5_0(rng)
    write_arch(out / "q5_0-tensor.gguf", "llama", [("blk.0.attn_q.weight", q5, GGMLQuantizationType.Q5_0)], llama3)
    write_arch(out / "short-rope-freqs.gguf", "llama",
               [("rope_freqs.weight", np.ones(3, dtype=np.float32), GGMLQuantizationType.F32)], llama3)
    expected = {"types.gguf": describe(out / "types.gguf"), "aligned64.gguf": describe(out / "aligned64.gguf")}
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
