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

// Every tensor of a slab starts on a multiple of this.
constexpr std::size_t slab_alignment = 256;
constexpr std::size_t slab_aligned(std::size_t n) { return (n + slab_alignment - 1) / slab_alignment * slab_alignment; }

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

// A split layout's slab is at most this much larger than layout_of's: three more aligned matrices.
constexpr std::size_t split_extra_bytes = 3 * slab_alignment;

// An uncompressed layer laid out to be decoded by the GPU and the host at once. The MLP is a sum over
// its rows, silu(gate x) * (up x) then down, so it splits into two blocks: rows [0, gpu_rows) of gate
// and up with the matching columns of down (repacked [n_embd, gpu_rows]) for the GPU, the other rows
// for the host, each block's matrices contiguous. Everything but the host block comes first, so a
// decode step copies only the slab's first `gpu_bytes`; a prompt copies it all and runs both blocks
// on the GPU. `layout` places the other tensors as layout_of does, and w_gate, w_up and w_down as the
// GPU block's matrices.
struct SplitLayout {
    LayerLayout layout;
    int gpu_rows = 0;
    int host_rows = 0;
    std::size_t gpu_bytes = 0;
    std::size_t host_gate = 0, host_up = 0, host_down = 0;  // offsets of the host block's matrices
};

// Whether the layer's MLP can be split so: gate and up [n_ff, n_embd], down [n_embd, n_ff], one dtype.
bool splittable(const LayerWeights& layer);
// Throws std::invalid_argument for a layer that is not splittable or rows outside [0, n_ff].
SplitLayout split_layout(const LayerWeights& layer, int gpu_rows);
void fill_split_slab(std::byte* dst, const LayerWeights& layer, const SplitLayout& split);

}  // namespace runner
