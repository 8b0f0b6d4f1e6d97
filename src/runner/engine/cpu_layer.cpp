#include "runner/engine/cpu_layer.h"

#include <algorithm>

#include "runner/backend/cpu/ops.h"
#include "runner/engine/decoder_layer.h"

namespace runner {

void LayerScratch::reserve(const ModelConfig& c, std::size_t n) {
    if (xb.size() >= n * c.n_embd) return;
    xb.resize(n * c.n_embd);
    q.resize(n * c.n_head * c.head_dim);
    k.resize(n * c.n_head_kv * c.head_dim);
    v.resize(n * c.n_head_kv * c.head_dim);
    att.resize(n * c.n_head * c.head_dim);
    gate.resize(n * c.n_ff);
}

namespace {

// decoder_layer's steps on the CPU for n tokens, one kernel after another.
struct CpuSteps {
    const ModelConfig& c;
    const LayerWeights& l;
    float* x;
    std::size_t n;
    const int* positions;
    const float* inv_freq;
    float* k_cache;
    float* v_cache;
    LayerScratch& s;
    cpu::ThreadPool& pool;

    std::size_t head_dim() const { return static_cast<std::size_t>(c.head_dim); }
    std::size_t kv_width() const { return static_cast<std::size_t>(c.n_head_kv) * head_dim(); }

    void norm_qkv() {
        cpu::rmsnorm(s.xb.data(), x, *l.attn_norm, n, static_cast<std::size_t>(c.n_embd), c.rms_eps);
        const cpu::Projection qkv[] = {{s.q.data(), *l.wq, l.bq}, {s.k.data(), *l.wk, l.bk}, {s.v.data(), *l.wv, l.bv}};
        cpu::matmul(qkv, s.xb.data(), n, pool);
    }
    void qk_norm() {
        cpu::rmsnorm(s.q.data(), s.q.data(), *l.q_norm, n * c.n_head, head_dim(), c.rms_eps);
        cpu::rmsnorm(s.k.data(), s.k.data(), *l.k_norm, n * c.n_head_kv, head_dim(), c.rms_eps);
    }
    void rope_store_kv() {
        cpu::rope(s.q.data(), n, static_cast<std::size_t>(c.n_head), head_dim(), inv_freq, positions, c.rope_pairs);
        cpu::rope(s.k.data(), n, static_cast<std::size_t>(c.n_head_kv), head_dim(), inv_freq, positions, c.rope_pairs);
        const std::size_t kv = kv_width();
        for (std::size_t t = 0; t < n; ++t) {
            std::copy_n(s.k.data() + t * kv, kv, k_cache + static_cast<std::size_t>(positions[t]) * kv);
            std::copy_n(s.v.data() + t * kv, kv, v_cache + static_cast<std::size_t>(positions[t]) * kv);
        }
    }
    void attention() {
        cpu::attention(s.att.data(), s.q.data(), k_cache, v_cache, n, positions, static_cast<std::size_t>(c.n_head),
                       static_cast<std::size_t>(c.n_head_kv), head_dim(), pool);
    }
    void output_add() {
        cpu::matmul(s.xb.data(), s.att.data(), *l.wo, nullptr, n, pool);
        add_residual();
    }
    void mlp() {
        cpu::rmsnorm(s.xb.data(), x, *l.ffn_norm, n, static_cast<std::size_t>(c.n_embd), c.rms_eps);
        cpu::swiglu_matmul(s.gate.data(), *l.w_gate, *l.w_up, s.xb.data(), n, pool);
        cpu::matmul(s.xb.data(), s.gate.data(), *l.w_down, nullptr, n, pool);
        add_residual();
    }
    void add_residual() {
        for (std::size_t i = 0; i < n * c.n_embd; ++i) x[i] += s.xb[i];
    }
};

}  // namespace

void cpu_layer_forward(const ModelConfig& c, const LayerWeights& l, float* x, std::size_t n, const int* positions,
                       const float* inv_freq, float* k_cache, float* v_cache, LayerScratch& scratch,
                       cpu::ThreadPool& pool) {
    CpuSteps steps{c, l, x, n, positions, inv_freq, k_cache, v_cache, scratch, pool};
    decoder_layer(steps, l);
}

}  // namespace runner
