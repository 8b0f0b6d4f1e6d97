// Kernels against plain loops, in every stored dtype, on the AVX2 and the portable paths.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"

namespace {

std::uint16_t to_bf16(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return static_cast<std::uint16_t>(bits >> 16);
}

struct Weights {
    std::vector<std::byte> bytes;
    std::vector<float> values;  // what the stored bytes decode to
    runner::TensorView view;
};

Weights make_weights(runner::DType dtype, std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    Weights w;
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    w.bytes.resize(n * runner::dtype_size(dtype));
    w.values.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const float v = dist(rng);
        if (dtype == runner::DType::f32) {
            std::memcpy(w.bytes.data() + 4 * i, &v, 4);
            w.values[i] = v;
        } else if (dtype == runner::DType::bf16) {
            const auto h = to_bf16(v);
            std::memcpy(w.bytes.data() + 2 * i, &h, 2);
            w.values[i] = runner::cpu::bf16_to_f32(h);
        } else {
            // f16 through its bit pattern: random in-range half values, subnormals included.
            const auto h = static_cast<std::uint16_t>(rng() & 0x7bff);
            std::memcpy(w.bytes.data() + 2 * i, &h, 2);
            w.values[i] = runner::cpu::f16_to_f32(h);
        }
    }
    w.view.dtype = dtype;
    w.view.shape = {rows, cols};
    w.view.data = w.bytes.data();
    w.view.bytes = w.bytes.size();
    return w;
}

}  // namespace

TEST_CASE("f16 and bf16 decoding of special values") {
    CHECK(runner::cpu::f16_to_f32(0x3c00) == 1.0f);
    CHECK(runner::cpu::f16_to_f32(0xc000) == -2.0f);
    CHECK(runner::cpu::f16_to_f32(0x0001) == doctest::Approx(5.960464e-8f));  // smallest subnormal
    CHECK(std::isinf(runner::cpu::f16_to_f32(0x7c00)));
    CHECK(runner::cpu::bf16_to_f32(0x3f80) == 1.0f);
}

// A decode product reads rows in pairs; a row must come out the same paired or alone, whatever chunk
// boundaries the threads draw.
TEST_CASE("dot_rows2 equals dot_row on each row bit for bit, every dtype, both paths") {
    std::mt19937 rng(31);
    for (const bool portable : {false, true}) {
        runner::cpu::force_portable(portable);
        for (const auto dtype : {runner::DType::f32, runner::DType::f16, runner::DType::bf16})
            for (const std::int64_t n : {5, 37, 83, 4096}) {
                CAPTURE(portable);
                CAPTURE(runner::dtype_name(dtype));
                CAPTURE(n);
                const auto w = make_weights(dtype, 2, n, rng);
                std::vector<float> x(static_cast<std::size_t>(n));
                for (auto& v : x) v = std::normal_distribution<float>()(rng);
                const std::size_t row_bytes = static_cast<std::size_t>(n) * runner::dtype_size(dtype);
                float pair[2];
                runner::cpu::dot_rows2(dtype, w.view.data, w.view.data + row_bytes, x.data(), x.size(), pair);
                CHECK(pair[0] == runner::cpu::dot_row(dtype, w.view.data, x.data(), x.size()));
                CHECK(pair[1] == runner::cpu::dot_row(dtype, w.view.data + row_bytes, x.data(), x.size()));
            }
    }
    runner::cpu::force_portable(false);
}

// q, k and v (and gate and up) go through one parallel pass; each part must equal its own product.
TEST_CASE("matmul over several projections equals each projection alone, biases included") {
    std::mt19937 rng(21);
    for (const unsigned threads : {1u, 3u, 8u}) {
        runner::cpu::ThreadPool pool(threads);
        for (const std::size_t n_tokens : {1u, 4u}) {
            CAPTURE(threads);
            CAPTURE(n_tokens);
            const std::int64_t d_in = 72;
            auto a = make_weights(runner::DType::bf16, 50, d_in, rng),
                 b = make_weights(runner::DType::f16, 7, d_in, rng),
                 c = make_weights(runner::DType::f32, 19, d_in, rng),
                 bias = make_weights(runner::DType::f32, 1, 7, rng);
            bias.view.shape = {7};
            std::vector<float> x(n_tokens * d_in);
            for (auto& v : x) v = std::normal_distribution<float>()(rng);
            std::vector<float> want_a(n_tokens * 50), want_b(n_tokens * 7), want_c(n_tokens * 19);
            runner::cpu::matmul(want_a.data(), x.data(), a.view, nullptr, n_tokens, pool);
            runner::cpu::matmul(want_b.data(), x.data(), b.view, &bias.view, n_tokens, pool);
            runner::cpu::matmul(want_c.data(), x.data(), c.view, nullptr, n_tokens, pool);
            std::vector<float> got_a(want_a.size(), -1.f), got_b(want_b.size(), -1.f), got_c(want_c.size(), -1.f);
            const runner::cpu::Projection parts[] = {
                {got_a.data(), a.view}, {got_b.data(), b.view, &bias.view}, {got_c.data(), c.view}};
            runner::cpu::matmul(parts, x.data(), n_tokens, pool);
            CHECK(got_a == want_a);
            CHECK(got_b == want_b);
            CHECK(got_c == want_c);
        }
    }
}

// The MLP's fused activations: whatever chunks the threads take, each row must come out as the two
// products and swiglu() give it, gate and up of one dtype (read as pairs) or of two (read apart).
TEST_CASE("swiglu_matmul equals gate and up products then swiglu, bit for bit") {
    std::mt19937 rng(47);
    using runner::DType;
    const std::pair<DType, DType> dtypes[] = {
        {DType::bf16, DType::bf16}, {DType::f16, DType::f16}, {DType::f32, DType::f32}, {DType::bf16, DType::f32}};
    for (const bool portable : {false, true})
        for (const unsigned threads : {1u, 3u, 8u})
            for (const auto& [gate_dtype, up_dtype] : dtypes)
                for (const std::int64_t d_in : {136, 141})  // 141: every loop's scalar tail runs
                    for (const std::size_t n_tokens : {1u, 2u, 4u}) {
                        CAPTURE(portable);
                        CAPTURE(threads);
                        CAPTURE(runner::dtype_name(gate_dtype));
                        CAPTURE(runner::dtype_name(up_dtype));
                        CAPTURE(d_in);
                        CAPTURE(n_tokens);
                        runner::cpu::force_portable(portable);
                        runner::cpu::ThreadPool pool(threads);
                        const std::int64_t d_ff = 77;
                        const auto gate = make_weights(gate_dtype, d_ff, d_in, rng),
                                   up = make_weights(up_dtype, d_ff, d_in, rng);
                        std::vector<float> x(n_tokens * static_cast<std::size_t>(d_in));
                        for (auto& v : x) v = std::normal_distribution<float>()(rng);
                        std::vector<float> want(n_tokens * d_ff), want_up(want.size()), got(want.size(), -1.f);
                        runner::cpu::matmul(want.data(), x.data(), gate.view, nullptr, n_tokens, pool);
                        runner::cpu::matmul(want_up.data(), x.data(), up.view, nullptr, n_tokens, pool);
                        runner::cpu::swiglu(want.data(), want_up.data(), want.size());
                        runner::cpu::swiglu_matmul(got.data(), gate.view, up.view, x.data(), n_tokens, pool);
                        CHECK(got == want);
                    }
    runner::cpu::force_portable(false);
}

// A prompt's tiles: every row-by-token dot equal, bit for bit, whatever tile it is computed in, and
// close to the exact sum.
TEST_CASE("dot_tile_f32: every tile size gives each dot the same bits, near the exact sum, both paths") {
    std::mt19937 rng(53);
    for (const bool portable : {false, true})
        for (const std::size_t n : {5u, 64u, 141u}) {
            CAPTURE(portable);
            CAPTURE(n);
            runner::cpu::force_portable(portable);
            const std::size_t x_stride = n + 3;  // tokens' rows need not be packed
            std::vector<float> rows(runner::cpu::tile_rows * n), x(runner::cpu::tile_tokens * x_stride);
            for (auto& v : rows) v = std::normal_distribution<float>()(rng);
            for (auto& v : x) v = std::normal_distribution<float>()(rng);
            float full[runner::cpu::tile_rows * runner::cpu::tile_tokens];
            runner::cpu::dot_tile_f32(rows.data(), runner::cpu::tile_rows, x.data(), x_stride, runner::cpu::tile_tokens,
                                      n, full);
            for (std::size_t r = 0; r < runner::cpu::tile_rows; ++r)
                for (std::size_t t = 0; t < runner::cpu::tile_tokens; ++t) {
                    double exact = 0, scale = 0;
                    for (std::size_t k = 0; k < n; ++k) {
                        exact += double(rows[r * n + k]) * x[t * x_stride + k];
                        scale += std::abs(double(rows[r * n + k]) * x[t * x_stride + k]);
                    }
                    CHECK(std::abs(full[r * runner::cpu::tile_tokens + t] - exact) <= 1e-5 * scale);
                }
            // every smaller tile, placed anywhere in the big one
            for (std::size_t n_rows = 1; n_rows <= runner::cpu::tile_rows; ++n_rows)
                for (std::size_t n_tokens = 1; n_tokens <= runner::cpu::tile_tokens; ++n_tokens)
                    for (std::size_t r0 = 0; r0 + n_rows <= runner::cpu::tile_rows; ++r0)
                        for (std::size_t t0 = 0; t0 + n_tokens <= runner::cpu::tile_tokens; ++t0) {
                            float part[runner::cpu::tile_rows * runner::cpu::tile_tokens];
                            runner::cpu::dot_tile_f32(rows.data() + r0 * n, n_rows, x.data() + t0 * x_stride, x_stride,
                                                      n_tokens, n, part);
                            for (std::size_t r = 0; r < n_rows; ++r)
                                for (std::size_t t = 0; t < n_tokens; ++t)
                                    CHECK(part[r * runner::cpu::tile_tokens + t] ==
                                          full[(r0 + r) * runner::cpu::tile_tokens + t0 + t]);
                        }
        }
    runner::cpu::force_portable(false);
}

// A prompt may arrive whole or in pieces (a rewound conversation, chunked passes): each token's
// products must not depend on which pass of two or more tokens it was in, nor on the token groups the
// pass was cut into (8192 wide: groups of 16, so 20 tokens make two).
TEST_CASE("prompt products give a token the same bits in one pass as in two, across token groups") {
    std::mt19937 rng(59);
    runner::cpu::ThreadPool pool(3);
    struct Case {
        std::int64_t d_in, d_out;
        std::size_t tokens, first;
    };
    for (const Case c : {Case{141, 23, 7, 2}, Case{8192, 5, 20, 9}})
        for (const auto dtype : {runner::DType::f32, runner::DType::bf16}) {
            CAPTURE(runner::dtype_name(dtype));
            CAPTURE(c.d_in);
            const auto w = make_weights(dtype, c.d_out, c.d_in, rng);
            const auto d_in = static_cast<std::size_t>(c.d_in), d_out = static_cast<std::size_t>(c.d_out);
            std::vector<float> x(c.tokens * d_in);
            for (auto& v : x) v = std::normal_distribution<float>()(rng);
            std::vector<float> whole(c.tokens * d_out), first(c.first * d_out), rest((c.tokens - c.first) * d_out);
            runner::cpu::matmul(whole.data(), x.data(), w.view, nullptr, c.tokens, pool);
            runner::cpu::matmul(first.data(), x.data(), w.view, nullptr, c.first, pool);
            runner::cpu::matmul(rest.data(), x.data() + c.first * d_in, w.view, nullptr, c.tokens - c.first, pool);
            first.insert(first.end(), rest.begin(), rest.end());
            CHECK(first == whole);
        }
}

// Workers spin between passes, then sleep; passes right after one another and passes after the
// workers have gone to sleep must both run every index exactly once.
TEST_CASE("thread pool runs every index once, back to back and after its workers sleep") {
    for (const unsigned threads : {2u, 7u}) {
        CAPTURE(threads);
        runner::cpu::ThreadPool pool(threads);
        std::vector<std::atomic<int>> hits(1000);
        const auto pass = [&](std::size_t n) {
            pool.parallel_for(n, [&](std::size_t begin, std::size_t end) {
                for (std::size_t i = begin; i < end; ++i) hits[i].fetch_add(1);
            });
        };
        for (int round = 0; round < 2000; ++round) pass(static_cast<std::size_t>(round % 1000 + 1));
        for (int round = 0; round < 5; ++round) {
            std::this_thread::sleep_for(std::chrono::milliseconds(3));  // past the spin: the workers sleep
            pass(1000);
        }
        // index i ran in every round with n > i, and in the five full passes
        for (std::size_t i = 0; i < hits.size(); ++i) {
            int want = 5;
            for (int round = 0; round < 2000; ++round) want += static_cast<std::size_t>(round % 1000 + 1) > i ? 1 : 0;
            if (hits[i].load() != want) {
                CHECK_MESSAGE(hits[i].load() == want, i);
                break;
            }
        }
    }
}

TEST_CASE("matmul matches a plain loop for every dtype, batch size and path") {
    std::mt19937 rng(11);
    runner::cpu::ThreadPool pool(3);
    for (const bool portable : {false, true}) {
        runner::cpu::force_portable(portable);
        for (const auto dtype : {runner::DType::f32, runner::DType::f16, runner::DType::bf16}) {
            for (const std::size_t n_tokens : {1u, 5u}) {
                CAPTURE(portable);
                CAPTURE(runner::dtype_name(dtype));
                CAPTURE(n_tokens);
                const std::int64_t d_out = 37, d_in = 83;  // odd sizes reach the scalar tails
                auto w = make_weights(dtype, d_out, d_in, rng);
                std::vector<float> x(n_tokens * d_in);
                std::normal_distribution<float> dist;
                for (auto& v : x) v = dist(rng);
                std::vector<float> out(n_tokens * d_out);
                runner::cpu::matmul(out.data(), x.data(), w.view, nullptr, n_tokens, pool);
                double worst = 0;
                for (std::size_t t = 0; t < n_tokens; ++t)
                    for (std::int64_t j = 0; j < d_out; ++j) {
                        double ref = 0, norm = 0;
                        for (std::int64_t i = 0; i < d_in; ++i) {
                            ref += double(w.values[j * d_in + i]) * x[t * d_in + i];
                            norm += std::abs(double(w.values[j * d_in + i]) * x[t * d_in + i]);
                        }
                        worst = std::max(worst, std::abs(out[t * d_out + j] - ref) / (norm + 1e-30));
                    }
                CHECK(worst < 1e-5);
            }
        }
    }
    runner::cpu::force_portable(false);
}

// Decode tokens (few (token, KV head) pairs) have their keys sliced across threads and merged; a
// batch of tokens does not. Both against the formula in double, for groups of 1, 4 and 7 heads.
TEST_CASE("attention with sliced keys and grouped heads equals the formula for decode and for a batch") {
    runner::cpu::ThreadPool pool(4);
    std::mt19937 rng(9);
    std::normal_distribution<float> dist;
    struct Shape {
        std::size_t n_head, n_kv, hd;
    };
    for (const auto& [n_head, n_kv, hd] : {Shape{4, 4, 16}, Shape{8, 2, 32}, Shape{14, 2, 24}}) {
        CAPTURE(n_head);
        const std::size_t n_ctx = 1500, kv = n_kv * hd;
        std::vector<float> k(n_ctx * kv), v(n_ctx * kv);
        for (auto* vec : {&k, &v})
            for (auto& x : *vec) x = dist(rng);
        for (const auto& positions : {std::vector<int>{1499}, std::vector<int>{0}, std::vector<int>{700, 701, 702},
                                      std::vector<int>{3, 1200}}) {
            CAPTURE(positions.size());
            const std::size_t n = positions.size();
            std::vector<float> q(n * n_head * hd), out(q.size());
            for (auto& x : q) x = 2 * dist(rng);
            runner::cpu::attention(out.data(), q.data(), k.data(), v.data(), n, positions.data(), n_head, n_kv, hd,
                                   pool);
            double worst = 0;
            for (std::size_t t = 0; t < n; ++t)
                for (std::size_t h = 0; h < n_head; ++h) {
                    const std::size_t kvh = h / (n_head / n_kv);
                    const auto keys = static_cast<std::size_t>(positions[t]) + 1;
                    std::vector<double> s(keys);
                    double mx = -1e300, sum = 0;
                    for (std::size_t p = 0; p < keys; ++p) {
                        double d = 0;
                        for (std::size_t i = 0; i < hd; ++i)
                            d += double(q[(t * n_head + h) * hd + i]) * k[p * kv + kvh * hd + i];
                        mx = std::max(mx, s[p] = d / std::sqrt(double(hd)));
                    }
                    for (auto& x : s) sum += (x = std::exp(x - mx));
                    for (std::size_t i = 0; i < hd; ++i) {
                        double ref = 0;
                        for (std::size_t p = 0; p < keys; ++p) ref += s[p] / sum * v[p * kv + kvh * hd + i];
                        worst = std::max(worst, std::abs(out[(t * n_head + h) * hd + i] - ref));
                    }
                }
            CHECK(worst < 2e-5);
        }
    }
}

TEST_CASE("attention over the cache equals softmax(q k / sqrt(d)) v written out") {
    runner::cpu::ThreadPool pool(2);
    const std::size_t n_head = 4, n_kv = 2, hd = 8, n_ctx = 6;
    std::mt19937 rng(5);
    std::normal_distribution<float> dist;
    std::vector<float> q(n_head * hd), k(n_ctx * n_kv * hd), v(n_ctx * n_kv * hd), out(n_head * hd);
    for (auto* vec : {&q, &k, &v})
        for (auto& x : *vec) x = dist(rng);
    const int pos[] = {4};
    runner::cpu::attention(out.data(), q.data(), k.data(), v.data(), 1, pos, n_head, n_kv, hd, pool);
    for (std::size_t h = 0; h < n_head; ++h) {
        const std::size_t kvh = h / (n_head / n_kv);
        std::vector<double> s(5);
        double mx = -1e30, sum = 0;
        for (int p = 0; p <= 4; ++p) {
            double d = 0;
            for (std::size_t i = 0; i < hd; ++i) d += q[h * hd + i] * k[p * n_kv * hd + kvh * hd + i];
            s[static_cast<std::size_t>(p)] = d / std::sqrt(double(hd));
            mx = std::max(mx, s[static_cast<std::size_t>(p)]);
        }
        for (auto& x : s) sum += (x = std::exp(x - mx));
        for (std::size_t i = 0; i < hd; ++i) {
            double ref = 0;
            for (int p = 0; p <= 4; ++p) ref += s[static_cast<std::size_t>(p)] / sum * v[p * n_kv * hd + kvh * hd + i];
            CHECK(out[h * hd + i] == doctest::Approx(ref).epsilon(1e-5));
        }
    }
}

TEST_CASE("RoPE on adjacent pairs of rows permuted as llama.cpp's converter permutes them equals rotate-half") {
    // convert_hf_to_gguf.py stores each head's dimension i at 2i and i + head_dim / 2 at 2i + 1.
    const std::size_t n_tokens = 3, n_heads = 2, head_dim = 8, half = head_dim / 2;
    std::mt19937 rng(9);
    std::normal_distribution<float> dist;
    std::vector<float> x(n_tokens * n_heads * head_dim), inv_freq(half);
    for (auto& v : x) v = dist(rng);
    for (std::size_t i = 0; i < half; ++i) inv_freq[i] = std::pow(10000.f, -2.f * static_cast<float>(i) / head_dim);
    const int positions[] = {0, 5, 1000};
    const auto permuted = [&](const std::vector<float>& v) {
        std::vector<float> out(v.size());
        for (std::size_t row = 0; row < n_tokens * n_heads; ++row)
            for (std::size_t i = 0; i < half; ++i) {
                out[row * head_dim + 2 * i] = v[row * head_dim + i];
                out[row * head_dim + 2 * i + 1] = v[row * head_dim + i + half];
            }
        return out;
    };
    auto halves = x, adjacent = permuted(x);
    runner::cpu::rope(halves.data(), n_tokens, n_heads, head_dim, inv_freq.data(), positions, runner::RopePairs::half);
    runner::cpu::rope(adjacent.data(), n_tokens, n_heads, head_dim, inv_freq.data(), positions,
                      runner::RopePairs::adjacent);
    CHECK(adjacent == permuted(halves));
    CHECK(halves != x);  // it turned something
}
