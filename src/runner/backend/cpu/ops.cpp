#include "runner/backend/cpu/ops.h"

#include <cmath>
#include <vector>

#include "runner/backend/cpu/simd.h"

namespace runner::cpu {

void rmsnorm(float* out, const float* x, const TensorView& weight, std::size_t n_tokens, std::size_t n, float eps) {
    std::vector<float> w(n);
    convert_row(weight.dtype, weight.data, w.data(), n);
    for (std::size_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * n;
        const float ms = dot_f32(xt, xt, n) / static_cast<float>(n);
        const float scale = 1.0f / std::sqrt(ms + eps);
        for (std::size_t i = 0; i < n; ++i) out[t * n + i] = xt[i] * scale * w[i];
    }
}

void matmul(float* out, const float* x, const TensorView& w, const TensorView* bias, std::size_t n_tokens,
            ThreadPool& pool) {
    const auto d_out = static_cast<std::size_t>(w.shape[0]);
    const auto d_in = static_cast<std::size_t>(w.shape[1]);
    const std::size_t row_bytes = d_in * dtype_size(w.dtype);
    std::vector<float> b;
    if (bias) {
        b.resize(d_out);
        convert_row(bias->dtype, bias->data, b.data(), d_out);
    }
    pool.parallel_for(d_out, [&](std::size_t begin, std::size_t end) {
        if (n_tokens == 1) {
            for (std::size_t j = begin; j < end; ++j)
                out[j] = dot_row(w.dtype, w.data + j * row_bytes, x, d_in) + (bias ? b[j] : 0.f);
            return;
        }
        // Convert a weight row once, then use it for every token of the batch.
        std::vector<float> row(d_in);
        for (std::size_t j = begin; j < end; ++j) {
            convert_row(w.dtype, w.data + j * row_bytes, row.data(), d_in);
            for (std::size_t t = 0; t < n_tokens; ++t)
                out[t * d_out + j] = dot_f32(row.data(), x + t * d_in, d_in) + (bias ? b[j] : 0.f);
        }
    });
}

void rope(float* x, std::size_t n_tokens, std::size_t n_heads, std::size_t head_dim, const float* inv_freq,
          const int* positions) {
    const std::size_t half = head_dim / 2;
    for (std::size_t t = 0; t < n_tokens; ++t) {
        for (std::size_t i = 0; i < half; ++i) {
            // As transformers computes it: the angle in f32, then cos and sin.
            const float angle = static_cast<float>(positions[t]) * inv_freq[i];
            const float c = std::cos(angle), s = std::sin(angle);
            for (std::size_t h = 0; h < n_heads; ++h) {
                float* v = x + t * n_heads * head_dim + h * head_dim;
                const float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
}

void attention(float* out, const float* q, const float* k_cache, const float* v_cache, std::size_t n_tokens,
               const int* positions, std::size_t n_head, std::size_t n_head_kv, std::size_t head_dim,
               ThreadPool& pool) {
    const std::size_t group = n_head / n_head_kv;
    const std::size_t kv_width = n_head_kv * head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    pool.parallel_for(n_tokens * n_head, [&](std::size_t begin, std::size_t end) {
        std::vector<float> acc(head_dim);
        for (std::size_t job = begin; job < end; ++job) {
            const std::size_t t = job / n_head, h = job % n_head;
            const float* qh = q + t * n_head * head_dim + h * head_dim;
            const std::size_t kvh = h / group;
            // Online softmax: one pass, no score buffer of the context's length.
            float max_score = -INFINITY, denom = 0;
            std::fill(acc.begin(), acc.end(), 0.f);
            for (int p = 0; p <= positions[t]; ++p) {
                const float* kp = k_cache + static_cast<std::size_t>(p) * kv_width + kvh * head_dim;
                const float* vp = v_cache + static_cast<std::size_t>(p) * kv_width + kvh * head_dim;
                const float score = dot_f32(qh, kp, head_dim) * scale;
                if (score > max_score) {
                    const float correction = std::exp(max_score - score);
                    denom *= correction;
                    for (auto& a : acc) a *= correction;
                    max_score = score;
                }
                const float weight = std::exp(score - max_score);
                denom += weight;
                for (std::size_t d = 0; d < head_dim; ++d) acc[d] += weight * vp[d];
            }
            float* oh = out + t * n_head * head_dim + h * head_dim;
            for (std::size_t d = 0; d < head_dim; ++d) oh[d] = acc[d] / denom;
        }
    });
}

void swiglu(float* gate, const float* up, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace runner::cpu
