// The CPU's products over block-quantized matrices (the host's rows of a compressed split layer), in the
// GPU kernels' layout as offload/quantize writes it, against dequantized() on both paths, with f32
// activations (the default 8-bit ones are test_int8_dot's).
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"
#include "runner/offload/quantize.h"
#include "runner/support/f32_products.h"

namespace {

struct Quantized {
    std::vector<float> source;
    std::vector<std::byte> bytes;
    std::vector<float> values;  // what the kernels must see: dequantized(), row-major
    runner::cpu::Matrix matrix;
};

Quantized quantized(runner::WeightType type, std::size_t rows, std::size_t cols, std::mt19937& rng) {
    Quantized q;
    std::normal_distribution<float> dist(0.f, 0.05f);
    q.source.resize(rows * cols);
    for (auto& v : q.source) v = dist(rng);
    runner::TensorView t;
    t.dtype = runner::DType::f32;
    t.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
    t.data = reinterpret_cast<const std::byte*>(q.source.data());
    t.bytes = q.source.size() * sizeof(float);
    q.bytes.resize(runner::quant_bytes(type, rows, cols));
    runner::quantize_matrix(t, type, q.bytes.data(), 2);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c)
            q.values.push_back(runner::dequantized(q.bytes.data(), type, rows, cols, r, c));
    q.matrix = runner::cpu::Matrix(q.bytes.data(), type, rows, cols);
    return q;
}

std::vector<float> random_x(std::size_t n, std::mt19937& rng) {
    std::vector<float> x(n);
    for (auto& v : x) v = std::normal_distribution<float>()(rng);
    return x;
}

// |got - sum| over the sum of the terms' magnitudes, the sum in double.
double relative_error(float got, const float* w, const float* x, std::size_t n) {
    double sum = 0, norm = 0;
    for (std::size_t i = 0; i < n; ++i) {
        sum += double(w[i]) * x[i];
        norm += std::abs(double(w[i]) * x[i]);
    }
    return std::abs(got - sum) / (norm + 1e-30);
}

}  // namespace

TEST_CASE("quantized rows: widened as dequantized() gives them, dotted near the exact sum, pairs bit for bit") {
    const test_support::F32Products f32_products;
    std::mt19937 rng(61);
    for (const bool portable : {false, true})
        for (const auto type : {runner::WeightType::q8, runner::WeightType::q4})
            for (const std::size_t cols : {32u, 160u, 4096u}) {
                CAPTURE(portable);
                CAPTURE(static_cast<int>(type));
                CAPTURE(cols);
                runner::cpu::force_portable(portable);
                const std::size_t rows = 5;
                const auto q = quantized(type, rows, cols, rng);
                const auto x = random_x(cols, rng);
                runner::cpu::TokenActivations activations;
                q.matrix.activations(x.data(), 1, activations);
                CHECK((activations.x == x.data()) == (type == runner::WeightType::q8));
                std::vector<float> row(cols);
                for (std::size_t r = 0; r < rows; ++r) {
                    CAPTURE(r);
                    q.matrix.convert(r, row.data());
                    CHECK(std::equal(row.begin(), row.end(), q.values.begin() + static_cast<std::ptrdiff_t>(r * cols)));
                    const float dot = q.matrix.dot(r, activations);
                    CHECK(relative_error(dot, q.values.data() + r * cols, x.data(), cols) < 1e-5);
                    // paired with every other row, and with a row of another matrix of the same format
                    for (std::size_t k = 0; k < rows; ++k) {
                        float pair[2];
                        runner::cpu::dot2(q.matrix, r, q.matrix, k, activations, pair);
                        CHECK(pair[0] == dot);
                        CHECK(pair[1] == q.matrix.dot(k, activations));
                    }
                }
            }
    runner::cpu::force_portable(false);
}

TEST_CASE("quantized matrices in matmul and swiglu_matmul: near the dequantized products, fused pass bit for bit") {
    const test_support::F32Products f32_products;
    std::mt19937 rng(67);
    for (const bool portable : {false, true})
        for (const auto type : {runner::WeightType::q8, runner::WeightType::q4})
            for (const unsigned threads : {1u, 3u})
                for (const std::size_t n_tokens : {1u, 2u, 4u, 20u}) {
                    CAPTURE(portable);
                    CAPTURE(static_cast<int>(type));
                    CAPTURE(threads);
                    CAPTURE(n_tokens);
                    runner::cpu::force_portable(portable);
                    runner::cpu::ThreadPool pool(threads);
                    const std::size_t d_ff = 45, d_in = 96;
                    const auto gate = quantized(type, d_ff, d_in, rng), up = quantized(type, d_ff, d_in, rng);
                    const auto x = random_x(n_tokens * d_in, rng);
                    std::vector<float> g(n_tokens * d_ff), u(g.size()), fused(g.size(), -1.f);
                    runner::cpu::matmul(g.data(), x.data(), gate.matrix, nullptr, n_tokens, pool);
                    runner::cpu::matmul(u.data(), x.data(), up.matrix, nullptr, n_tokens, pool);
                    double worst = 0;
                    for (std::size_t t = 0; t < n_tokens; ++t)
                        for (std::size_t j = 0; j < d_ff; ++j)
                            worst = std::max(worst, relative_error(g[t * d_ff + j], gate.values.data() + j * d_in,
                                                                   x.data() + t * d_in, d_in));
                    CHECK(worst < 1e-5);
                    runner::cpu::swiglu(g.data(), u.data(), g.size());
                    runner::cpu::swiglu_matmul(fused.data(), gate.matrix, up.matrix, x.data(), n_tokens, pool);
                    CHECK(fused == g);
                }
    runner::cpu::force_portable(false);
}
