// Prompt attention on tensor cores (attention_tensor.cu), for attention.cu to dispatch to.
#pragma once

#include "runner/backend/gpu/vendor.h"

namespace runner::gpu {

// Whether the current device and this head_dim can take attention_prompt_tensor.
bool tensor_attention_supported(int head_dim);

// As attention() for a prompt, with an f16 cache.
void attention_prompt_tensor(float* out, const float* q, const unsigned short* k_cache, const unsigned short* v_cache,
                             const int* positions, int n_tokens, int n_head, int n_head_kv, int head_dim, float scale,
                             cudaStream_t stream);

}  // namespace runner::gpu
