#include "runner/offload/layer_slab.h"

#include <cstring>

namespace runner {

namespace {

constexpr std::size_t alignment = 256;

std::size_t align_up(std::size_t n) { return (n + alignment - 1) / alignment * alignment; }

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
        at = align_up(at + out.size[i]);
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

}  // namespace runner
