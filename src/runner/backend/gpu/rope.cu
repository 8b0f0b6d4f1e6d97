// Rotary embedding of q and k, and k and v into the KV cache: the step between the projections and
// attention, in one launch. The cache rows come from the device's positions, so the launch does not
// depend on the host's idea of where the pass starts.
#include "runner/backend/gpu/launch.h"
#include "runner/backend/gpu/rotary.h"

namespace runner::gpu {

namespace {

// One block per (token, head), the q heads first, then the KV heads; thread i rotates frequency i's pair
// (rotary_pair). A KV head's block also writes its k and v rows.
template <class T>
__global__ void rope_store_kernel(float* q, float* k, const float* v, KvRows cache, int n_head, int n_head_kv,
                                  int head_dim, const float* inv_freq, const int* positions, bool adjacent) {
    let_next_kernel_start();
    wait_for_previous_kernel();
    const int heads = n_head + n_head_kv;
    const int t = static_cast<int>(blockIdx.x) / heads, h = static_cast<int>(blockIdx.x) % heads;
    const bool is_q = h < n_head;
    const std::size_t width = static_cast<std::size_t>(is_q ? n_head : n_head_kv) * head_dim;
    const std::size_t at =
        static_cast<std::size_t>(t) * width + static_cast<std::size_t>(is_q ? h : h - n_head) * head_dim;
    float* x = (is_q ? q : k) + at;
    // the KV head's cache rows at the token's position, near or far, and its place in them
    T* k_cache = cache_row<T>(cache, true, positions[t], width);
    T* v_cache = cache_row<T>(cache, false, positions[t], width);
    const std::size_t row = at - static_cast<std::size_t>(t) * width;
    for (int i = static_cast<int>(threadIdx.x); i < head_dim / 2; i += static_cast<int>(blockDim.x)) {
        const RotaryPair r = rotary_pair(i, head_dim, positions[t], inv_freq, adjacent);
        const float2 turned = rotate(r, x[r.first], x[r.second]);
        x[r.first] = turned.x;
        x[r.second] = turned.y;
        if (is_q) continue;
        store_kv(k_cache, row + static_cast<std::size_t>(r.first), turned.x);
        store_kv(k_cache, row + static_cast<std::size_t>(r.second), turned.y);
        store_kv(v_cache, row + static_cast<std::size_t>(r.first), v[at + static_cast<std::size_t>(r.first)]);
        store_kv(v_cache, row + static_cast<std::size_t>(r.second), v[at + static_cast<std::size_t>(r.second)]);
    }
}

}  // namespace

void rope_store_kv(float* q, float* k, const float* v, const KvRows& cache, KvType kv_type, int n_tokens, int n_head,
                   int n_head_kv, int head_dim, const float* inv_freq, const int* positions, RopePairs pairs,
                   const Stream& stream) {
    const bool adjacent = pairs == RopePairs::adjacent;
    if (n_tokens == 0) return;
    const unsigned blocks = static_cast<unsigned>(n_tokens * (n_head + n_head_kv));
    const auto kernel = kv_type == KvType::f16 ? rope_store_kernel<unsigned short> : rope_store_kernel<float>;
    launch_overlapped(kernel, blocks, 64, native(stream), q, k, v, cache, n_head, n_head_kv, head_dim, inv_freq,
                      positions, adjacent);
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
