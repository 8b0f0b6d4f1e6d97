// The tensors one forward pass needs, found by their Hugging Face names and checked against the
// config's shapes. Views into the source's mappings: the source must outlive this.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/model/weight_source.h"

namespace runner {

struct LayerWeights {
    const TensorView* attn_norm;         // [n_embd]
    const TensorView* wq;                // [n_head * head_dim, n_embd]
    const TensorView* wk;                // [n_head_kv * head_dim, n_embd]
    const TensorView* wv;                // [n_head_kv * head_dim, n_embd]
    const TensorView* wo;                // [n_embd, n_head * head_dim]
    const TensorView* bq = nullptr;      // [n_head * head_dim] (Qwen2)
    const TensorView* bk = nullptr;      // [n_head_kv * head_dim]
    const TensorView* bv = nullptr;      // [n_head_kv * head_dim]
    const TensorView* q_norm = nullptr;  // [head_dim] (Qwen3)
    const TensorView* k_norm = nullptr;  // [head_dim]
    const TensorView* ffn_norm;          // [n_embd]
    const TensorView* w_gate;            // [n_ff, n_embd]
    const TensorView* w_up;              // [n_ff, n_embd]
    const TensorView* w_down;            // [n_embd, n_ff]

    std::size_t bytes() const;  // all of the layer's weight bytes
};

// A layer's tensors in a fixed order; those the architecture lacks are nullptr.
std::array<const TensorView*, 14> layer_tensors(const LayerWeights& l);

// Places in layer_tensors()' order, for what is laid out by it (a slab's offsets, sizes and types).
namespace layer_slot {
enum Slot { attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w_gate, w_up, w_down };
}

// Page-cache advice for all of a layer's file-backed tensors: read them ahead, or drop them (from
// this mapping and the page cache) once used, so that streaming keeps to its RAM budget.
void will_need(const LayerWeights& l);
void dont_need(const LayerWeights& l);

struct ModelWeights {
    const TensorView* token_embd;   // [n_vocab, n_embd]
    const TensorView* output_norm;  // [n_embd]
    const TensorView* output;       // [n_vocab, n_embd] (token_embd when tied)
    std::vector<LayerWeights> layers;
};

// Every missing tensor and wrong shape is reported, each naming the tensor and both shapes.
common::Result<ModelWeights> bind_weights(const WeightSource& source);

}  // namespace runner
