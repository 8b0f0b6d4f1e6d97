// One transformer layer on the CPU for a few or many tokens: RMSNorm, q/k/v (biases, per-head norms
// where the architecture has them), RoPE, keys and values into the layer's cache, grouped-query
// attention, output projection and residual; RMSNorm, SwiGLU MLP, residual. The CPU engine runs it
// for every layer.
#pragma once

#include <cstddef>
#include <vector>

#include "runner/backend/cpu/thread_pool.h"
#include "runner/model/model_config.h"
#include "runner/model/model_weights.h"

namespace runner {

// A layer's intermediate activations, grown to the largest batch seen, never shrunk.
struct LayerScratch {
    std::vector<float> xb;    // [n, n_embd]       normed input of a block
    std::vector<float> q;     // [n, n_head * head_dim]
    std::vector<float> k;     // [n, n_head_kv * head_dim]
    std::vector<float> v;     // [n, n_head_kv * head_dim]
    std::vector<float> att;   // [n, n_head * head_dim]
    std::vector<float> gate;  // [n, n_ff]           silu(gate) * up

    void reserve(const ModelConfig& c, std::size_t n);
};

// x: [n, n_embd], updated in place; positions: [n]; k_cache, v_cache: this layer's [n_ctx, n_head_kv * head_dim],
// rows at `positions` written; inv_freq: rope_inv_freq(c). `scratch` must hold n tokens.
void cpu_layer_forward(const ModelConfig& c, const LayerWeights& l, float* x, std::size_t n, const int* positions,
                       const float* inv_freq, float* k_cache, float* v_cache, LayerScratch& scratch,
                       cpu::ThreadPool& pool);

}  // namespace runner
