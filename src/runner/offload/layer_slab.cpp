#include "runner/offload/layer_slab.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace runner {

namespace {

// wq, wk, wv, wo, w_gate, w_up, w_down, in layer_tensors() order: the matrices compression applies to.
constexpr std::array<bool, 14> projection = {false, true,  true,  true,  true, false, false,
                                             false, false, false, false, true, true,  true};

}  // namespace

WeightType stored_type(DType dtype) {
    switch (dtype) {
        case DType::bf16: return WeightType::bf16;
        case DType::f16: return WeightType::f16;
        case DType::q8_0: return WeightType::q8_0;
        case DType::q4_0: return WeightType::q4_0;
        case DType::q4_k: return WeightType::q4_k;
        case DType::q5_k: return WeightType::q5_k;
        case DType::q6_k: return WeightType::q6_k;
        default: return WeightType::f32;
    }
}

LayerLayout layout_of(const LayerWeights& layer, Compression compression) {
    LayerLayout out;
    const auto tensors = layer_tensors(layer);
    std::size_t at = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const TensorView* t = tensors[i];
        if (!t) continue;
        out.offset[i] = at;
        if (compression != Compression::none && projection[i] && quantizable(*t)) {
            out.type[i] = quantized_type(compression);
            out.size[i] =
                quant_bytes(out.type[i], static_cast<std::size_t>(t->shape[0]), static_cast<std::size_t>(t->shape[1]));
        } else {
            out.type[i] = stored_type(t->dtype);
            out.size[i] = t->bytes;
        }
        at = slab_aligned(at + out.size[i]);
    }
    out.bytes = at;
    return out;
}

cpu::Matrix slab_matrix(const std::byte* at, WeightType type, DType dtype, std::size_t rows, std::size_t cols) {
    if (is_quantized(type)) return {at, type, rows, cols};
    TensorView t;
    t.dtype = dtype;
    t.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
    t.data = at;
    t.bytes = rows * row_bytes(dtype, cols);
    return t;
}

void fill_slab(std::byte* dst, const LayerWeights& layer, const LayerLayout& layout, unsigned threads) {
    const auto tensors = layer_tensors(layer);
    std::memset(dst, 0, layout.bytes);  // the padding too: slabs are checksummed
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (!tensors[i]) continue;
        if (is_quantized(layout.type[i]))
            quantize_matrix(*tensors[i], layout.type[i], dst + layout.offset[i], threads);
        else
            std::memcpy(dst + layout.offset[i], tensors[i]->data, tensors[i]->bytes);
    }
}

using namespace layer_slot;

namespace {

// The DType a slab keeps a stored type in (stored_type's inverse).
DType stored_dtype(WeightType type) {
    switch (type) {
        case WeightType::bf16: return DType::bf16;
        case WeightType::f16: return DType::f16;
        case WeightType::q8_0: return DType::q8_0;
        case WeightType::q4_0: return DType::q4_0;
        case WeightType::q4_k: return DType::q4_k;
        case WeightType::q5_k: return DType::q5_k;
        case WeightType::q6_k: return DType::q6_k;
        default: return DType::f32;
    }
}

// Rows [r0, r1) and columns [c0, c1) of the [rows, cols] matrix at src as a matrix of their own at dst;
// quantized or in ggml's blocks, the columns on block boundaries (ours: each row's quants, then its
// scales).
void copy_block(std::byte* dst, const std::byte* src, WeightType type, std::size_t rows, std::size_t cols,
                std::size_t r0, std::size_t r1, std::size_t c0, std::size_t c1) {
    const std::size_t out_rows = r1 - r0, out_cols = c1 - c0;
    const auto copy_rows = [&](std::byte* to, const std::byte* from, std::size_t num, std::size_t den) {
        for (std::size_t r = r0; r < r1; ++r)
            std::memcpy(to + (r - r0) * out_cols * num / den, from + (r * cols + c0) * num / den, out_cols * num / den);
    };
    if (!is_quantized(type)) {
        const DType dtype = stored_dtype(type);
        return copy_rows(dst, src, block_bytes(dtype), block_elements(dtype));
    }
    copy_rows(dst, src, 1, type == WeightType::q4 ? 2 : 1);
    const std::size_t block = quant_block;
    std::byte* scales_to = dst + quant_scales_offset(type, out_rows, out_cols);
    const std::byte* scales_from = src + quant_scales_offset(type, rows, cols);
    for (std::size_t r = r0; r < r1; ++r)
        std::memcpy(scales_to + (r - r0) * (out_cols / block) * sizeof(float),
                    scales_from + (r * (cols / block) + c0 / block) * sizeof(float), out_cols / block * sizeof(float));
}

}  // namespace

std::size_t matrix_bytes(WeightType type, std::size_t rows, std::size_t cols) {
    if (is_quantized(type)) return quant_bytes(type, rows, cols);
    return rows * row_bytes(stored_dtype(type), cols);
}

bool splittable(const LayerWeights& layer, Compression compression) {
    const TensorView *gate = layer.w_gate, *up = layer.w_up, *down = layer.w_down;
    if (!gate || !up || !down || gate->shape.size() != 2 || up->shape != gate->shape || down->shape.size() != 2)
        return false;
    // gate and up are read together (dot2); down may be another type (a GGUF's Q6_K beside Q4_K)
    const bool shapes = down->shape[0] == gate->shape[1] && down->shape[1] == gate->shape[0] &&
                        gate->dtype == up->dtype && is_block_type(down->dtype) == is_block_type(gate->dtype);
    if (!shapes || compression == Compression::none) return shapes;
    const auto layout = layout_of(layer, compression);
    return is_quantized(layout.type[w_gate]) && is_quantized(layout.type[w_up]) && is_quantized(layout.type[w_down]);
}

int split_granule(const LayerWeights& layer, Compression compression) {
    if (layer.w_down && is_block_type(layer.w_down->dtype))
        return static_cast<int>(std::max(block_elements(layer.w_down->dtype), std::size_t{8}));
    return compression == Compression::none ? 8 : quant_block;
}

SplitLayout split_layout(const LayerWeights& layer, Compression compression, int gpu_rows) {
    if (!splittable(layer, compression)) throw std::invalid_argument("split_layout: the MLP's matrices do not match");
    SplitLayout out;
    out.layout = layout_of(layer, compression);
    out.compression = compression;
    const auto n_ff = static_cast<int>(layer.w_down->shape[1]);
    if (gpu_rows < 0 || gpu_rows > n_ff) throw std::invalid_argument("split_layout: rows outside the MLP");
    const bool blocks = compression != Compression::none || is_block_type(layer.w_down->dtype);
    if (blocks && gpu_rows % split_granule(layer, compression) != 0)
        throw std::invalid_argument("split_layout: quantized rows must split at a block boundary");
    const std::size_t e = static_cast<std::size_t>(layer.w_down->shape[0]);
    const std::size_t g = static_cast<std::size_t>(gpu_rows), h = static_cast<std::size_t>(n_ff - gpu_rows);
    out.gpu_rows = gpu_rows;
    out.host_rows = n_ff - gpu_rows;
    // The MLP comes last in layout_of's order: rebuild it from where it starts, GPU block then host block.
    std::size_t at = out.layout.offset[w_gate];
    const auto place = [&](Slot s, std::size_t rows, std::size_t cols) {
        const std::size_t here = at, bytes = matrix_bytes(out.layout.type[s], rows, cols);
        at = slab_aligned(at + bytes);
        return std::pair{here, bytes};
    };
    std::tie(out.layout.offset[w_gate], out.layout.size[w_gate]) = place(w_gate, g, e);
    std::tie(out.layout.offset[w_up], out.layout.size[w_up]) = place(w_up, g, e);
    std::tie(out.layout.offset[w_down], out.layout.size[w_down]) = place(w_down, e, g);
    out.gpu_bytes = at;
    out.host_gate = place(w_gate, h, e).first;
    out.host_up = place(w_up, h, e).first;
    out.host_down = place(w_down, e, h).first;
    out.layout.bytes = at;
    return out;
}

void fill_split_slab(std::byte* dst, const LayerWeights& layer, const SplitLayout& split, const std::byte* whole) {
    const auto tensors = layer_tensors(layer);
    const auto& layout = split.layout;
    const bool compressed = split.compression != Compression::none;
    if (compressed && !whole) throw std::invalid_argument("fill_split_slab: a compressed layer needs its whole slab");
    const auto whole_layout = layout_of(layer, split.compression);
    // Each tensor as the whole slab holds it, or as its file does.
    const auto source = [&](std::size_t i) { return compressed ? whole + whole_layout.offset[i] : tensors[i]->data; };
    std::memset(dst, 0, layout.bytes);
    for (std::size_t i = 0; i < w_gate; ++i)
        if (tensors[i]) std::memcpy(dst + layout.offset[i], source(i), layout.size[i]);
    const std::size_t e = static_cast<std::size_t>(layer.w_down->shape[0]);
    const std::size_t g = static_cast<std::size_t>(split.gpu_rows),
                      n_ff = g + static_cast<std::size_t>(split.host_rows);
    for (const auto& [slot, host] : {std::pair{w_gate, split.host_gate}, std::pair{w_up, split.host_up}}) {
        copy_block(dst + layout.offset[slot], source(slot), layout.type[slot], n_ff, e, 0, g, 0, e);
        copy_block(dst + host, source(slot), layout.type[slot], n_ff, e, g, n_ff, 0, e);
    }
    // down is [n_embd, n_ff]: each of its rows splits at column gpu_rows
    copy_block(dst + layout.offset[w_down], source(w_down), layout.type[w_down], e, n_ff, 0, e, 0, g);
    copy_block(dst + split.host_down, source(w_down), layout.type[w_down], e, n_ff, 0, e, g, n_ff);
}

}  // namespace runner
