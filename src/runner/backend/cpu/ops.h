// CPU kernels of one transformer step each. Activations are f32, row-major [n_tokens, width];
// weights are TensorViews in their stored dtype, converted inside the kernel.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "runner/backend/cpu/int8_dot.h"
#include "runner/backend/cpu/simd.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/model/model_config.h"
#include "runner/model/safetensors.h"

namespace runner::cpu {

// A product's activations as a matrix's rows read them: the f32 values (one token's for q4's float rows:
// rearranged by simd's q4_activations), or for the rows the integer products take, every token's
// quantized to 8 bits (int8_dot.h).
struct TokenActivations {
    const float* x = nullptr;
    std::vector<float> arranged;
    Int8Activations int8;
};

// Whether products with quantized rows (ours and GGUF's blocks) use 8-bit activations and integer dot
// products (the default), or f32 activations: tests and benchmarks compare both.
void use_int8_products(bool on);

// A weight matrix [rows, cols] as the products read it: a tensor in its stored dtype, or block-quantized
// in the GPU kernels' layout (a split layer's host rows under compression). Quantized rows take 8-bit
// activations (int8_dot.h); the others are widened in registers for one token, a tile of rows at a time
// for a prompt.
class Matrix {
  public:
    Matrix() = default;
    Matrix(const TensorView& t);  // NOLINT(google-explicit-constructor): every 2-D tensor is one
    Matrix(const std::byte* data, WeightType quantized, std::size_t rows, std::size_t cols);

    std::size_t rows() const { return rows_; }
    std::size_t cols() const { return cols_; }
    std::size_t bytes() const { return bytes_; }
    // The activations x [n_tokens, cols] as dot(), dot2() and int8_tile() read them, prepared once per
    // product.
    void activations(const float* x, std::size_t n_tokens, TokenActivations& out) const;
    float dot(std::size_t row, const TokenActivations& activations) const;
    // Whether the products take 8-bit activations; then a prompt's tiles are int8_tile()'s.
    bool takes_int8() const;
    // out[r * int8_tile_tokens + t] for rows [row, row + n_rows) and tokens [first_token, first_token + n_tokens)
    // (int8_dot.h's dot_int8_tile).
    void int8_tile(std::size_t row, std::size_t n_rows, const TokenActivations& activations, std::size_t first_token,
                   std::size_t n_tokens, float* out) const;
    void convert(std::size_t row, float* out) const;
    bool same_format(const Matrix& other) const;
    // The same matrix, its products on f32 activations whatever use_int8_products says: the
    // exact reference the GPU kernel checks compare with.
    Matrix with_f32_activations() const;
    // Row j of a and row k of b, two matrices of the same format, each summed as dot() sums it and read
    // together: each load of the activations serves both, two weight streams are in flight.
    friend void dot2(const Matrix& a, std::size_t j, const Matrix& b, std::size_t k,
                     const TokenActivations& activations, float* out);

  private:
    QuantRow quant_row(std::size_t row) const;
    WeightType int8_type() const;
    Int8Row int8_row(std::size_t row) const;

    const std::byte* data_ = nullptr;
    const float* scales_ = nullptr;  // quantized only
    DType dtype_ = DType::f32;
    WeightType type_ = WeightType::q8;  // quantized only
    bool int8_ = true;
    std::size_t rows_ = 0, cols_ = 0, row_bytes_ = 0, bytes_ = 0;
};
void dot2(const Matrix& a, std::size_t j, const Matrix& b, std::size_t k, const TokenActivations& activations,
          float* out);

// out[t, :] = x[t, :] / rms(x[t, :]) * weight        x, out: [n_tokens, n]; weight: [n]
void rmsnorm(float* out, const float* x, const TensorView& weight, std::size_t n_tokens, std::size_t n, float eps);

// out[t, j] = sum_i w[j, i] * x[t, i] (+ bias[j])    x: [n_tokens, d_in]; w: [d_out, d_in]; out: [n_tokens, d_out]
// A prompt's rows are read once per group of 16-64 tokens (as many as stay in L2) and computed in tiles
// of rows by tokens; a token's results do not depend on the pass it came in, for passes of 2 or more
// tokens (a single token's sum runs in another order).
void matmul(float* out, const float* x, const Matrix& w, const TensorView* bias, std::size_t n_tokens,
            ThreadPool& pool);

// One of several products of the same input, computed in one parallel pass (q, k and v; gate and up):
// one wait for the threads instead of one per product, and no thread idles on a short product.
struct Projection {
    float* out;  // [n_tokens, w.rows()]
    Matrix w;
    const TensorView* bias = nullptr;
};
void matmul(std::span<const Projection> parts, const float* x, std::size_t n_tokens, ThreadPool& pool);

// Rotary embedding, in place: frequency i turns the pair of dimensions `pairs` says.
// x: [n_tokens, n_heads * head_dim]; inv_freq: [head_dim / 2], positions: [n_tokens]
void rope(float* x, std::size_t n_tokens, std::size_t n_heads, std::size_t head_dim, const float* inv_freq,
          const int* positions, RopePairs pairs);

// Causal grouped-query attention for tokens at `positions`, reading keys and values for positions
// 0..positions[t] from the cache.   q, out: [n_tokens, n_head * head_dim];
// k_cache, v_cache: [n_ctx, n_head_kv * head_dim]
void attention(float* out, const float* q, const float* k_cache, const float* v_cache, std::size_t n_tokens,
               const int* positions, std::size_t n_head, std::size_t n_head_kv, std::size_t head_dim, ThreadPool& pool);

// gate = silu(gate) * up, in place.   gate, up: [n]
void swiglu(float* gate, const float* up, std::size_t n);

// out[t, j] = silu(gate[j, :] . x[t, :]) * (up[j, :] . x[t, :]): the MLP's activations in one parallel
// pass, each thread computing its gate and up rows (side by side for a single token) and applying SwiGLU
// to them, so no single thread runs over all of them after.   x: [n_tokens, d_in]; gate, up: [d_ff, d_in];
// out: [n_tokens, d_ff]. Equal, bit for bit, to the two products and swiglu() in turn.
void swiglu_matmul(float* out, const Matrix& gate, const Matrix& up, const float* x, std::size_t n_tokens,
                   ThreadPool& pool);

}  // namespace runner::cpu
