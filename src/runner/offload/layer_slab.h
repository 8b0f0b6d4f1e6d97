// A layer's tensors packed into one buffer, a "slab": what the GPU engine uploads, pins, streams
// through its ring and what `ollama-airllm prepare` stores per layer. Every tensor starts on a 256-byte
// boundary; projections are block-quantized when compression is asked for.
#pragma once

#include <array>
#include <cstddef>

#include "runner/backend/cpu/ops.h"
#include "runner/model/model_weights.h"
#include "runner/model/weight_format.h"
#include "runner/offload/quantize.h"

namespace runner {

// Every tensor of a slab starts on a multiple of this.
constexpr std::size_t slab_alignment = 256;
constexpr std::size_t slab_aligned(std::size_t n) { return (n + slab_alignment - 1) / slab_alignment * slab_alignment; }

struct LayerLayout {
    std::array<std::size_t, 14> offset{};  // in layer_tensors() order
    std::array<std::size_t, 14> size{};    // 0 for a tensor the architecture lacks
    std::array<WeightType, 14> type{};
    std::size_t bytes = 0;
};

WeightType stored_type(DType dtype);

// What `rows` x `cols` weights of `type` take as a matrix of their own.
std::size_t matrix_bytes(WeightType type, std::size_t rows, std::size_t cols);

LayerLayout layout_of(const LayerWeights& layer, Compression compression);

// A matrix of `rows` x `cols` inside a slab, stored as `type` (quantized, or else the layer's `dtype`),
// as the CPU kernels read it.
cpu::Matrix slab_matrix(const std::byte* at, WeightType type, DType dtype, std::size_t rows, std::size_t cols);

// Writes the layer's slab into `dst` (layout.bytes): tensors copied as stored, or quantized.
void fill_slab(std::byte* dst, const LayerWeights& layer, const LayerLayout& layout, unsigned threads);

// A split layout's slab is at most this much larger than layout_of's: three more aligned matrices, and
// compressed, their scales aligned too.
constexpr std::size_t split_extra_bytes = 6 * slab_alignment;

// A layer laid out to be decoded by the GPU and the host at once. The MLP is a sum over its rows,
// silu(gate x) * (up x) then down, so it splits into two blocks: rows [0, gpu_rows) of gate and up with
// the matching columns of down (repacked [n_embd, gpu_rows]) for the GPU, the other rows for the host,
// each block's matrices contiguous and in the layer's format (compressed: each block a quantized matrix
// of its own, so down splits at a block boundary). Everything but the host block comes first, so a
// decode step copies only the slab's first `gpu_bytes`; a prompt copies it all and runs both blocks on
// the GPU. `layout` places the other tensors as layout_of does, and w_gate, w_up and w_down as the GPU
// block's matrices.
struct SplitLayout {
    LayerLayout layout;
    Compression compression = Compression::none;
    int gpu_rows = 0;
    int host_rows = 0;
    std::size_t gpu_bytes = 0;
    std::size_t host_gate = 0, host_up = 0, host_down = 0;  // offsets of the host block's matrices
};

// Whether the layer's MLP can be split so: gate and up [n_ff, n_embd] of one dtype, down [n_embd, n_ff]
// (of theirs, or another of ggml's block types when theirs is one), and under compression all three
// quantized.
bool splittable(const LayerWeights& layer, Compression compression);
// What the GPU's rows must be a multiple of: a block of down's type (its rows split between blocks), ours
// under compression, else 8 (each row of the GPU's down block whole 16-byte runs of a 16-bit type, as its
// kernel reads them).
int split_granule(const LayerWeights& layer, Compression compression);
// Throws std::invalid_argument for a layer that is not splittable, rows outside [0, n_ff] or, quantized
// (ours or ggml's), not a multiple of split_granule.
SplitLayout split_layout(const LayerWeights& layer, Compression compression, int gpu_rows);
// Writes the split slab. Uncompressed, from the layer's tensors; compressed, from `whole`, the layer's
// slab as layout_of(layer, compression) lays it out (made by fill_slab or read from prepare's cache);
// throws std::invalid_argument without it.
void fill_split_slab(std::byte* dst, const LayerWeights& layer, const SplitLayout& split, const std::byte* whole);

}  // namespace runner
