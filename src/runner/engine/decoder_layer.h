// A decoder layer, described once for both engines. The architectures of model/model_config's traits
// table differ only in what is decided here (a step a layer may lack) and in the data the steps read
// (q/k/v biases are null where an architecture has none). Each engine supplies the steps for a batch of
// tokens whose residual stream it holds, fused as its hardware prefers: engine/cpu_layer.cpp and
// GpuTransformer::LayerPass. A new architecture feature is a step or a decision here, then its kernel
// in each backend; a new architecture that needs none is a row in the traits table.
#pragma once

#include <concepts>

#include "runner/model/model_weights.h"

namespace runner {

template <class S>
concept LayerSteps = requires(S steps) {
    steps.norm_qkv();
    steps.qk_norm();
    steps.rope_store_kv();
    steps.attention();
    steps.output_add();
    steps.mlp();
};

template <LayerSteps Steps>
void decoder_layer(Steps& steps, const LayerWeights& l) {
    // attention: RMSNorm, then the q, k and v projections, with their biases where the layer has them
    steps.norm_qkv();
    // per-head RMSNorm of q and k (Qwen3)
    if (l.q_norm) steps.qk_norm();
    // rotary embedding of q and k; k and v into this layer's cache at their positions
    steps.rope_store_kv();
    // grouped-query attention over the cache, then its output projection added into the residual
    steps.attention();
    steps.output_add();
    // MLP: RMSNorm, silu(gate) * up, then the down projection added into the residual
    steps.mlp();
}

}  // namespace runner
