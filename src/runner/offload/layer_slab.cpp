#include "runner/offload/layer_slab.h"

#include <cstring>
#include <stdexcept>

namespace runner {

namespace {

// wq, wk, wv, wo, w_gate, w_up, w_down, in layer_tensors() order: the matrices compression applies to.
constexpr std::array<bool, 14> projection = {false, true,  true,  true,  true, false, false,
                                             false, false, false, false, true, true,  true};

}  // namespace

gpu::WeightType stored_type(DType dtype) {
    switch (dtype) {
        case DType::bf16: return gpu::WeightType::bf16;
        case DType::f16: return gpu::WeightType::f16;
        default: return gpu::WeightType::f32;
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
            out.size[i] = gpu::quant_bytes(out.type[i], static_cast<std::size_t>(t->shape[0]),
                                           static_cast<std::size_t>(t->shape[1]));
        } else {
            out.type[i] = stored_type(t->dtype);
            out.size[i] = t->bytes;
        }
        at = slab_aligned(at + out.size[i]);
    }
    out.bytes = at;
    return out;
}

void fill_slab(std::byte* dst, const LayerWeights& layer, const LayerLayout& layout, unsigned threads) {
    const auto tensors = layer_tensors(layer);
    std::memset(dst, 0, layout.bytes);  // the padding too: slabs are checksummed
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (!tensors[i]) continue;
        if (gpu::is_quantized(layout.type[i]))
            quantize_matrix(*tensors[i], layout.type[i], dst + layout.offset[i], threads);
        else
            std::memcpy(dst + layout.offset[i], tensors[i]->data, tensors[i]->bytes);
    }
}

using layer_slot::w_down;
using layer_slot::w_gate;
using layer_slot::w_up;

bool splittable(const LayerWeights& layer) {
    const TensorView *gate = layer.w_gate, *up = layer.w_up, *down = layer.w_down;
    if (!gate || !up || !down || gate->shape.size() != 2 || up->shape != gate->shape || down->shape.size() != 2)
        return false;
    return down->shape[0] == gate->shape[1] && down->shape[1] == gate->shape[0] && gate->dtype == down->dtype &&
           up->dtype == down->dtype;
}

SplitLayout split_layout(const LayerWeights& layer, int gpu_rows) {
    if (!splittable(layer)) throw std::invalid_argument("split_layout: the MLP's matrices do not match");
    SplitLayout out;
    out.layout = layout_of(layer, Compression::none);
    const TensorView& down = *layer.w_down;
    const auto n_ff = static_cast<int>(down.shape[1]);
    if (gpu_rows < 0 || gpu_rows > n_ff) throw std::invalid_argument("split_layout: rows outside the MLP");
    const std::size_t e = static_cast<std::size_t>(down.shape[0]), element = dtype_size(down.dtype);
    const std::size_t g = static_cast<std::size_t>(gpu_rows), h = static_cast<std::size_t>(n_ff - gpu_rows);
    out.gpu_rows = gpu_rows;
    out.host_rows = n_ff - gpu_rows;
    // The MLP comes last in layout_of's order: rebuild it from where it starts, GPU block then host block.
    std::size_t at = out.layout.offset[w_gate];
    const auto place = [&](std::size_t bytes) {
        const std::size_t here = at;
        at = slab_aligned(at + bytes);
        return here;
    };
    out.layout.offset[w_gate] = place(out.layout.size[w_gate] = g * e * element);
    out.layout.offset[w_up] = place(out.layout.size[w_up] = g * e * element);
    out.layout.offset[w_down] = place(out.layout.size[w_down] = e * g * element);
    out.gpu_bytes = at;
    out.host_gate = place(h * e * element);
    out.host_up = place(h * e * element);
    out.host_down = place(e * h * element);
    out.layout.bytes = at;
    return out;
}

void fill_split_slab(std::byte* dst, const LayerWeights& layer, const SplitLayout& split) {
    const auto tensors = layer_tensors(layer);
    const auto& layout = split.layout;
    std::memset(dst, 0, layout.bytes);
    for (std::size_t i = 0; i < w_gate; ++i)
        if (tensors[i]) std::memcpy(dst + layout.offset[i], tensors[i]->data, tensors[i]->bytes);
    const TensorView &gate = *layer.w_gate, &up = *layer.w_up, &down = *layer.w_down;
    const std::size_t element = dtype_size(down.dtype), e = static_cast<std::size_t>(down.shape[0]);
    const std::size_t g = static_cast<std::size_t>(split.gpu_rows), h = static_cast<std::size_t>(split.host_rows);
    const std::size_t row = e * element;  // a row of gate or up
    std::memcpy(dst + layout.offset[w_gate], gate.data, g * row);
    std::memcpy(dst + layout.offset[w_up], up.data, g * row);
    std::memcpy(dst + split.host_gate, gate.data + g * row, h * row);
    std::memcpy(dst + split.host_up, up.data + g * row, h * row);
    // down is [n_embd, n_ff]: each of its rows splits at column gpu_rows
    for (std::size_t r = 0; r < e; ++r) {
        const std::byte* from = down.data + r * (g + h) * element;
        std::memcpy(dst + layout.offset[w_down] + r * g * element, from, g * element);
        std::memcpy(dst + split.host_down + r * h * element, from + g * element, h * element);
    }
}

}  // namespace runner
