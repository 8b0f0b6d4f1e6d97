#include "runner/backend/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "runner/backend/cpu/simd.h"

namespace runner::cpu {

Matrix::Matrix(const TensorView& t)
    : data_(t.data),
      dtype_(t.dtype),
      rows_(t.shape.empty() ? 0 : static_cast<std::size_t>(t.shape[0])),
      cols_(t.shape.size() < 2 ? 1 : static_cast<std::size_t>(t.shape[1])),
      row_bytes_(row_bytes(t.dtype, cols_)),
      bytes_(t.bytes) {}

Matrix::Matrix(const std::byte* data, WeightType quantized, std::size_t rows, std::size_t cols)
    : data_(data),
      scales_(reinterpret_cast<const float*>(data + quant_scales_offset(quantized, rows, cols))),
      type_(quantized),
      rows_(rows),
      cols_(cols),
      row_bytes_(quantized == WeightType::q8 ? cols : cols / 2),
      bytes_(quant_bytes(quantized, rows, cols)) {}

QuantRow Matrix::quant_row(std::size_t row) const {
    return {data_ + row * row_bytes_, scales_ + row * (cols_ / quant_block)};
}

namespace {
bool int8_on = true;  // changed only by tests and benchmarks, before any product runs
}  // namespace

void use_int8_products(bool on) { int8_on = on; }

bool Matrix::takes_int8() const { return int8_on && int8_ && (scales_ || is_block_type(dtype_)); }

Matrix Matrix::with_f32_activations() const {
    Matrix m = *this;
    m.int8_ = false;
    return m;
}

WeightType Matrix::int8_type() const {
    if (scales_) return type_;
    switch (dtype_) {
        case DType::q8_0: return WeightType::q8_0;
        case DType::q4_0: return WeightType::q4_0;
        case DType::q4_k: return WeightType::q4_k;
        case DType::q5_k: return WeightType::q5_k;
        default: return WeightType::q6_k;
    }
}

Int8Row Matrix::int8_row(std::size_t row) const {
    if (scales_) return {data_ + row * row_bytes_, scales_ + row * (cols_ / quant_block)};
    return {data_ + row * row_bytes_};
}

void Matrix::activations(const float* x, std::size_t n_tokens, TokenActivations& out) const {
    out.x = x;
    if (takes_int8()) return quantize_activations(x, n_tokens * cols_, out.int8);
    if (n_tokens != 1 || !scales_ || type_ != WeightType::q4) return;
    out.arranged.resize(cols_ / quant_block * q4_block_activations);
    q4_activations(x, cols_, out.arranged.data());
    out.x = out.arranged.data();
}

float Matrix::dot(std::size_t row, const TokenActivations& activations) const {
    if (takes_int8()) return dot_int8(int8_type(), int8_row(row), activations.int8, cols_);
    if (scales_) return dot_qrow(type_, quant_row(row), activations.x, cols_);
    return dot_row(dtype_, data_ + row * row_bytes_, activations.x, cols_);
}

void Matrix::int8_tile(std::size_t row, std::size_t n_rows, const TokenActivations& activations,
                       std::size_t first_token, std::size_t n_tokens, float* out) const {
    Int8Row rows[int8_tile_rows];
    for (std::size_t r = 0; r < n_rows; ++r) rows[r] = int8_row(row + r);
    dot_int8_tile(int8_type(), rows, n_rows, activations.int8, first_token, n_tokens, cols_, out);
}

bool Matrix::same_format(const Matrix& other) const {
    return (scales_ != nullptr) == (other.scales_ != nullptr) &&
           (scales_ ? type_ == other.type_ : dtype_ == other.dtype_) && cols_ == other.cols_ && int8_ == other.int8_;
}

void dot2(const Matrix& a, std::size_t j, const Matrix& b, std::size_t k, const TokenActivations& activations,
          float* out) {
    if (!a.same_format(b)) throw std::invalid_argument("dot2: the two matrices differ in format");
    if (a.takes_int8())
        return dot_int8_rows2(a.int8_type(), a.int8_row(j), b.int8_row(k), activations.int8, a.cols_, out);
    if (a.scales_) return dot_qrows2(a.type_, a.quant_row(j), b.quant_row(k), activations.x, a.cols_, out);
    dot_rows2(a.dtype_, a.data_ + j * a.row_bytes_, b.data_ + k * b.row_bytes_, activations.x, a.cols_, out);
}

void Matrix::convert(std::size_t row, float* out) const {
    if (scales_) return convert_qrow(type_, quant_row(row), out, cols_);
    convert_row(dtype_, data_ + row * row_bytes_, out, cols_);
}

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

namespace {

// Prompt tokens per group: the group's activations (about 512 KiB) stay in the core's L2 cache while
// every row of a chunk passes over them, a multiple of the tile's tokens. At least 16, since every group
// reads and converts the chunk's rows again: for the widest rows (8B's down projection, 14336 wide)
// that is 0.9 MiB of activations, still within a server core's L2.
std::size_t token_group(std::size_t d_in) {
    const std::size_t fit = (std::size_t{512} << 10) / (std::max<std::size_t>(d_in, 1) * sizeof(float));
    return std::clamp<std::size_t>(fit / tile_tokens * tile_tokens, 16, 64);
}

// Rows [begin, end) of w dotted with each of the n_tokens activations x [n_tokens, d_in], as a prompt
// needs them, in tiles of rows by tokens so that loads serve several products: quantized rows on 8-bit
// activations (int8_tile, each row's blocks decoded once per tile), the others converted to f32 a tile
// of rows at a time (dot_tile_f32). store(t, j, value) takes each result.
template <typename Store>
void prompt_rows(const Matrix& w, std::size_t begin, std::size_t end, const TokenActivations& x, std::size_t n_tokens,
                 Store store) {
    const bool int8 = w.takes_int8();
    const std::size_t d_in = w.cols(), group = token_group(d_in);
    const std::size_t rows_per_tile = int8 ? int8_tile_rows : tile_rows;
    const std::size_t tokens_per_tile = int8 ? int8_tile_tokens : tile_tokens;
    std::vector<float> rows(int8 ? 0 : tile_rows * d_in);
    float tile[std::max(tile_rows * tile_tokens, int8_tile_rows * int8_tile_tokens)];
    for (std::size_t t0 = 0; t0 < n_tokens; t0 += group) {
        const std::size_t t_end = std::min(n_tokens, t0 + group);
        for (std::size_t j = begin; j < end; j += rows_per_tile) {
            const std::size_t n_rows = std::min(rows_per_tile, end - j);
            if (!int8)
                for (std::size_t r = 0; r < n_rows; ++r) w.convert(j + r, rows.data() + r * d_in);
            for (std::size_t t = t0; t < t_end; t += tokens_per_tile) {
                const std::size_t n_tile = std::min(tokens_per_tile, t_end - t);
                if (int8)
                    w.int8_tile(j, n_rows, x, t, n_tile, tile);
                else
                    dot_tile_f32(rows.data(), n_rows, x.x + t * d_in, d_in, n_tile, d_in, tile);
                for (std::size_t r = 0; r < n_rows; ++r)
                    for (std::size_t k = 0; k < n_tile; ++k) store(t + k, j + r, tile[r * tokens_per_tile + k]);
            }
        }
    }
}

}  // namespace

void matmul(std::span<const Projection> parts, const float* x, std::size_t n_tokens, ThreadPool& pool) {
    if (parts.empty()) return;
    // Rows of all parts end to end: first[p] is part p's first row in that numbering.
    std::vector<std::size_t> first{0};
    std::vector<std::vector<float>> biases(parts.size());
    // Each part's activations, prepared once for all the parts of one format (q, k and v).
    std::vector<TokenActivations> prepared(parts.size());
    std::vector<const TokenActivations*> xs(parts.size());
    for (std::size_t p = 0; p < parts.size(); ++p) {
        const std::size_t d_out = parts[p].w.rows();
        first.push_back(first.back() + d_out);
        if (p > 0 && parts[p].w.same_format(parts[p - 1].w)) {
            xs[p] = xs[p - 1];
        } else {
            parts[p].w.activations(x, n_tokens, prepared[p]);
            xs[p] = &prepared[p];
        }
        if (const TensorView* bias = parts[p].bias) {
            biases[p].resize(d_out);
            convert_row(bias->dtype, bias->data, biases[p].data(), d_out);
        }
    }
    pool.parallel_for(first.back(), [&](std::size_t begin, std::size_t end) {
        for (std::size_t p = 0; p < parts.size(); ++p) {
            const std::size_t lo = std::max(begin, first[p]), hi = std::min(end, first[p + 1]);
            if (lo >= hi) continue;
            const Matrix& w = parts[p].w;
            const std::size_t d_out = first[p + 1] - first[p];
            const auto bias = [&](std::size_t j) { return biases[p].empty() ? 0.f : biases[p][j]; };
            const std::size_t j_end = hi - first[p];
            std::size_t j = lo - first[p];
            if (n_tokens == 1) {
                // Rows in pairs: more weight reads in flight per core, each load of x serving two rows.
                float pair[2];
                for (; j + 2 <= j_end; j += 2) {
                    dot2(w, j, w, j + 1, *xs[p], pair);
                    parts[p].out[j] = pair[0] + bias(j);
                    parts[p].out[j + 1] = pair[1] + bias(j + 1);
                }
                if (j < j_end) parts[p].out[j] = w.dot(j, *xs[p]) + bias(j);
                continue;
            }
            prompt_rows(w, j, j_end, *xs[p], n_tokens, [&](std::size_t t, std::size_t row, float v) {
                parts[p].out[t * d_out + row] = v + bias(row);
            });
        }
    });
}

void matmul(float* out, const float* x, const Matrix& w, const TensorView* bias, std::size_t n_tokens,
            ThreadPool& pool) {
    const Projection part{out, w, bias};
    matmul(std::span(&part, 1), x, n_tokens, pool);
}

void rope(float* x, std::size_t n_tokens, std::size_t n_heads, std::size_t head_dim, const float* inv_freq,
          const int* positions, RopePairs pairs) {
    const std::size_t half = head_dim / 2;
    const std::size_t stride = pairs == RopePairs::adjacent ? 2 : 1, partner = pairs == RopePairs::adjacent ? 1 : half;
    for (std::size_t t = 0; t < n_tokens; ++t) {
        for (std::size_t i = 0; i < half; ++i) {
            // As transformers computes it: the angle in f32, then cos and sin.
            const float angle = static_cast<float>(positions[t]) * inv_freq[i];
            const float c = std::cos(angle), s = std::sin(angle);
            for (std::size_t h = 0; h < n_heads; ++h) {
                float* v = x + t * n_heads * head_dim + h * head_dim;
                const float a = v[i * stride], b = v[i * stride + partner];
                v[i * stride] = a * c - b * s;
                v[i * stride + partner] = b * c + a * s;
            }
        }
    }
}

namespace {

// Keys per slice at least: shorter slices cost more to merge than they gain in threads.
constexpr std::size_t min_slice_keys = 256;

}  // namespace

void attention(float* out, const float* q, const float* k_cache, const float* v_cache, std::size_t n_tokens,
               const int* positions, std::size_t n_head, std::size_t n_head_kv, std::size_t head_dim,
               ThreadPool& pool) {
    const std::size_t group = n_head / n_head_kv;
    const std::size_t kv_width = n_head_kv * head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    // A job is one (token, KV head) pair and a slice of its keys, for all `group` query heads at once:
    // each cached key and value row is read once per group, not once per head, and reading the cache
    // is what a long context's attention costs. A decode token has only n_head_kv pairs, fewer than
    // the threads, so its keys are sliced; the slices' states are merged after.
    const std::size_t pairs = n_tokens * n_head_kv;
    if (pairs == 0) return;
    std::size_t longest = 0;
    for (std::size_t t = 0; t < n_tokens; ++t) longest = std::max(longest, static_cast<std::size_t>(positions[t]) + 1);
    const std::size_t slices = std::max<std::size_t>(1, std::min(2 * pool.size() / pairs, longest / min_slice_keys));
    const std::size_t state_floats = group * (head_dim + 2);  // per job: each head's output, max, sum
    std::vector<float> states(slices > 1 ? pairs * slices * state_floats : 0);

    pool.parallel_for(pairs * slices, [&](std::size_t begin, std::size_t end) {
        std::vector<float> own(slices > 1 ? 0 : state_floats);
        for (std::size_t job = begin; job < end; ++job) {
            const std::size_t pair = job / slices, slice = job % slices;
            const std::size_t t = pair / n_head_kv, kvh = pair % n_head_kv;
            const std::size_t keys = static_cast<std::size_t>(positions[t]) + 1;
            // each head's state: [head_dim] unnormalized output, then running maximum and sum
            float* state = slices > 1 ? states.data() + job * state_floats : own.data();
            std::fill(state, state + state_floats, 0.f);
            for (std::size_t g = 0; g < group; ++g) state[g * (head_dim + 2) + head_dim] = -INFINITY;
            const float* q_group = q + t * n_head * head_dim + kvh * group * head_dim;
            // Online softmax: one pass, no score buffer of the context's length.
            for (std::size_t p = keys * slice / slices; p < keys * (slice + 1) / slices; ++p) {
                const float* kp = k_cache + p * kv_width + kvh * head_dim;
                const float* vp = v_cache + p * kv_width + kvh * head_dim;
                for (std::size_t g = 0; g < group; ++g) {
                    float* acc = state + g * (head_dim + 2);
                    float &max = acc[head_dim], &sum = acc[head_dim + 1];
                    const float score = dot_f32(q_group + g * head_dim, kp, head_dim) * scale;
                    if (score > max) {
                        const float correction = std::exp(max - score);
                        sum *= correction;
                        for (std::size_t d = 0; d < head_dim; ++d) acc[d] *= correction;
                        max = score;
                    }
                    const float weight = std::exp(score - max);
                    sum += weight;
                    axpy_f32(weight, vp, acc, head_dim);
                }
            }
            if (slices > 1) continue;
            for (std::size_t g = 0; g < group; ++g) {
                const float* acc = state + g * (head_dim + 2);
                float* oh = out + t * n_head * head_dim + (kvh * group + g) * head_dim;
                for (std::size_t d = 0; d < head_dim; ++d) oh[d] = acc[d] / acc[head_dim + 1];
            }
        }
    });
    if (slices == 1) return;

    // Each head's slices rescaled to their common maximum (an empty slice weighs nothing), normalized.
    pool.parallel_for(pairs * group, [&](std::size_t begin, std::size_t end) {
        for (std::size_t job = begin; job < end; ++job) {
            const std::size_t pair = job / group, g = job % group;
            const std::size_t t = pair / n_head_kv, kvh = pair % n_head_kv;
            const auto slice_state = [&](std::size_t slice) {
                return states.data() + (pair * slices + slice) * state_floats + g * (head_dim + 2);
            };
            float max = -INFINITY;
            for (std::size_t slice = 0; slice < slices; ++slice) max = std::max(max, slice_state(slice)[head_dim]);
            float* oh = out + t * n_head * head_dim + (kvh * group + g) * head_dim;
            std::fill(oh, oh + head_dim, 0.f);
            float sum = 0.f;
            for (std::size_t slice = 0; slice < slices; ++slice) {
                const float* st = slice_state(slice);
                if (st[head_dim + 1] == 0.f) continue;
                const float weight = std::exp(st[head_dim] - max);
                sum += st[head_dim + 1] * weight;
                for (std::size_t d = 0; d < head_dim; ++d) oh[d] += st[d] * weight;
            }
            for (std::size_t d = 0; d < head_dim; ++d) oh[d] /= sum;
        }
    });
}

void swiglu(float* gate, const float* up, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void swiglu_matmul(float* out, const Matrix& gate, const Matrix& up, const float* x, std::size_t n_tokens,
                   ThreadPool& pool) {
    const std::size_t d_ff = gate.rows();
    // Up reads the gate's activations unless its rows are in another format.
    const bool paired = gate.same_format(up);
    TokenActivations gate_x, own_up_x;
    gate.activations(x, n_tokens, gate_x);
    if (!paired) up.activations(x, n_tokens, own_up_x);
    const TokenActivations& up_x = paired ? gate_x : own_up_x;
    pool.parallel_for(d_ff, [&](std::size_t begin, std::size_t end) {
        // Gate results go straight to this chunk's columns of `out`; the up results wait beside them.
        const std::size_t rows = end - begin;
        std::vector<float> ups(n_tokens * rows);
        if (n_tokens > 1) {
            prompt_rows(gate, begin, end, gate_x, n_tokens,
                        [&](std::size_t t, std::size_t j, float v) { out[t * d_ff + j] = v; });
            prompt_rows(up, begin, end, up_x, n_tokens,
                        [&](std::size_t t, std::size_t j, float v) { ups[t * rows + j - begin] = v; });
        } else {
            for (std::size_t j = begin; j < end; ++j) {
                if (paired) {
                    float pair[2];
                    dot2(gate, j, up, j, gate_x, pair);
                    out[j] = pair[0];
                    ups[j - begin] = pair[1];
                } else {
                    out[j] = gate.dot(j, gate_x);
                    ups[j - begin] = up.dot(j, up_x);
                }
            }
        }
        for (std::size_t t = 0; t < n_tokens; ++t) swiglu(out + t * d_ff + begin, ups.data() + t * rows, rows);
    });
}

}  // namespace runner::cpu
