// How weights and the KV cache are stored in memory, shared by the CPU kernels, the GPU kernels and the
// offload code that lays layers out for them: the element types and the block-quantized matrix layout.
#pragma once

#include <cstddef>

namespace runner {

// q8 and q4: our own compression (below); q8_0 ... q6_k: ggml's blocks as GGUF files hold them
// (model/safetensors.h's DType, backend/cpu/block_quants.h), read in place.
enum class WeightType { f32, f16, bf16, q8, q4, q8_0, q4_0, q4_k, q5_k, q6_k };

// Block-quantized matrices [d_out, d_in] (d_in a multiple of quant_block), written by
// offload/quantize: the quants row-major (q8: one int8 per weight; q4: two per byte, low nibble
// first, stored + 8), then, at quant_scales_offset, the f32 scales [d_out, d_in / quant_block];
// a weight is quant * scale. Kernels widen them in registers: no full-precision copy is made.
constexpr int quant_block = 32;
constexpr std::size_t quant_scales_offset(WeightType type, std::size_t d_out, std::size_t d_in) {
    const std::size_t quants = type == WeightType::q8 ? d_out * d_in : d_out * d_in / 2;
    return (quants + 255) / 256 * 256;
}
constexpr std::size_t quant_bytes(WeightType type, std::size_t d_out, std::size_t d_in) {
    return quant_scales_offset(type, d_out, d_in) + d_out * (d_in / quant_block) * sizeof(float);
}
constexpr bool is_quantized(WeightType type) { return type == WeightType::q8 || type == WeightType::q4; }
constexpr bool is_ggml_block(WeightType type) {
    return type == WeightType::q8_0 || type == WeightType::q4_0 || type == WeightType::q4_k ||
           type == WeightType::q5_k || type == WeightType::q6_k;
}

// The KV cache's element type. f16 (llama.cpp's default too) halves what the cache takes of the VRAM
// budget and feeds the tensor cores: prompt attention runs as f16 products with f32 accumulation
// where the GPU has them. f32 keeps every step in f32, for checking against the CPU engine.
enum class KvType { f16, f32 };
constexpr std::size_t kv_element_bytes(KvType type) { return type == KvType::f16 ? 2 : 4; }

}  // namespace runner
