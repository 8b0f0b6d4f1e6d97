// A layer's tensors packed into one buffer, a "slab": what the GPU engine uploads, pins, streams
// through its ring and what `ollama-airllm prepare` stores per layer. Every tensor starts on a 256-byte
// boundary; projections are block-quantized when compression is asked for.
#pragma once

#include <array>
#include <cstddef>

#include "runner/backend/gpu/backend.h"
#include "runner/model/model_weights.h"
#include "runner/offload/quantize.h"

namespace runner {

struct LayerLayout {
    std::array<std::size_t, 14> offset{};  // in layer_tensors() order
    std::array<std::size_t, 14> size{};    // 0 for a tensor the architecture lacks
    std::array<gpu::WeightType, 14> type{};
    std::size_t bytes = 0;
};

gpu::WeightType stored_type(DType dtype);

LayerLayout layout_of(const LayerWeights& layer, Compression compression);

// Writes the layer's slab into `dst` (layout.bytes): tensors copied as stored, or quantized.
void fill_slab(std::byte* dst, const LayerWeights& layer, const LayerLayout& layout, unsigned threads);

}  // namespace runner
