// Random-weight GGUF models shaped like Llama 3.1 8B and Llama 3.3 70B in a Q4_K_M-like layout (Q4_K
// projections, Q6_K for attn_v, ffn_down and the output head, F32 norms), written once into the benchmark
// cache: the same file for our runner and for llama.cpp's, without downloading one. The blocks are random
// bytes with sane f16 scales, as the quantizer's output would have; the vocabulary is "none" (llama.cpp
// benchmarks take token ids), so only token ids go in. About 4.9 GB (8B) and 42 GB (70B).
#pragma once

#include <filesystem>

namespace bench {

enum class GgufShape { llama_8b, llama_70b };

std::filesystem::path default_gguf_path(GgufShape shape);  // ~/.cache/ollama-airllm-rocm/bench-...-q4_k_m.gguf
void ensure_random_gguf(const std::filesystem::path& file, GgufShape shape);

}  // namespace bench
