// GGUF's block-quantized rows on the CPU against gguf's own numpy dequantization: random blocks with sane
// scales and their F32 values, side by side in tests/fixtures/gguf/blocks.gguf
// (tools/reference/make_gguf_fixtures.py). Widening gives exactly those values; the products (a token's dot,
// two rows at once, a prompt's tiles) sum them; both the AVX2 and the portable paths.
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"
#include "runner/model/gguf.h"
#include "runner/model/gguf_model.h"
#include "runner/support/f32_products.h"

namespace {

struct Pair {
    runner::TensorView blocks;
    std::vector<float> values;  // gguf's dequantization, row-major
};

runner::TensorView view_of(const runner::GgufFile& file, const runner::GgufTensor& t) {
    runner::TensorView v;
    v.name = t.name;
    v.dtype = *runner::engine_dtype(*t.type);
    v.shape.assign(t.dims.rbegin(), t.dims.rend());
    v.data = file.data(t).data();
    v.bytes = t.bytes;
    return v;
}

Pair load(const runner::GgufFile& file, const std::string& type) {
    Pair p;
    for (const auto& t : file.header().tensors) {
        if (t.name == "q." + type) p.blocks = view_of(file, t);
        if (t.name == "f." + type) {
            const auto bytes = file.data(t);
            p.values.resize(bytes.size() / sizeof(float));
            std::memcpy(p.values.data(), bytes.data(), bytes.size());
        }
    }
    REQUIRE(p.blocks.data);
    REQUIRE(p.values.size() == static_cast<std::size_t>(p.blocks.numel()));
    return p;
}

// The f32 products; the default 8-bit ones are test_int8_dot's.
void check_type(const std::string& type) {
    CAPTURE(type);
    const test_support::F32Products f32_products;
    auto file = runner::GgufFile::open(std::string(OAR_FIXTURES) + "/gguf/blocks.gguf");
    REQUIRE(file.ok());
    const Pair p = load(*file, type);
    CHECK(runner::is_block_type(p.blocks.dtype));
    CHECK(runner::dtype_name(p.blocks.dtype) == [&] {
        std::string upper = type;
        for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        return upper;
    }());
    const runner::cpu::Matrix m(p.blocks);
    const std::size_t rows = m.rows(), cols = m.cols();
    REQUIRE(rows == 4);
    REQUIRE(cols == 512);
    CHECK(m.bytes() == rows * runner::row_bytes(p.blocks.dtype, cols));

    std::mt19937 rng(5);
    std::normal_distribution<float> dist;
    std::vector<float> x(cols * 5);
    for (auto& v : x) v = dist(rng);
    for (const bool portable : {false, true}) {
        CAPTURE(portable);
        runner::cpu::force_portable(portable);
        std::vector<float> row(cols);
        for (std::size_t r = 0; r < rows; ++r) {
            CAPTURE(r);
            m.convert(r, row.data());
            const float* want = p.values.data() + r * cols;
            // the same products of the same f16 scales and integers: equal, up to a fused multiply-add
            float worst = 0;
            for (std::size_t i = 0; i < cols; ++i)
                worst = std::max(worst, std::abs(row[i] - want[i]) / (std::abs(want[i]) + 1e-3f));
            CHECK(worst < 1e-5f);
            double exact = 0, norm = 0;
            for (std::size_t i = 0; i < cols; ++i) {
                exact += double(want[i]) * x[i];
                norm += std::abs(double(want[i]) * x[i]);
            }
            runner::cpu::TokenActivations a;
            m.activations(x.data(), 1, a);
            CHECK(std::abs(m.dot(r, a) - exact) / norm < 1e-5);
            float two[2];
            runner::cpu::dot2(m, r, m, (r + 1) % rows, a, two);
            CHECK(two[0] == m.dot(r, a));
            CHECK(two[1] == m.dot((r + 1) % rows, a));
        }
        // a prompt's product (tiles of converted rows) against the exact sums
        runner::cpu::ThreadPool pool(2);
        std::vector<float> out(5 * rows);
        runner::cpu::matmul(out.data(), x.data(), m, nullptr, 5, pool);
        for (std::size_t t = 0; t < 5; ++t)
            for (std::size_t r = 0; r < rows; ++r) {
                double exact = 0, norm = 0;
                for (std::size_t i = 0; i < cols; ++i) {
                    exact += double(p.values[r * cols + i]) * x[t * cols + i];
                    norm += std::abs(double(p.values[r * cols + i]) * x[t * cols + i]);
                }
                CHECK(std::abs(out[t * rows + r] - exact) / norm < 1e-5);
            }
    }
    runner::cpu::force_portable(false);
}

}  // namespace

TEST_CASE("GGUF blocks: Q8_0 widened and dotted as gguf dequantizes it") { check_type("q8_0"); }
TEST_CASE("GGUF blocks: Q4_0 widened and dotted as gguf dequantizes it") { check_type("q4_0"); }
TEST_CASE("GGUF blocks: Q4_K widened and dotted as gguf dequantizes it") { check_type("q4_k"); }
TEST_CASE("GGUF blocks: Q5_K widened and dotted as gguf dequantizes it") { check_type("q5_k"); }
TEST_CASE("GGUF blocks: Q6_K widened and dotted as gguf dequantizes it") { check_type("q6_k"); }

TEST_CASE("GGUF blocks: row sizes follow ggml's block layouts") {
    using runner::DType;
    CHECK(runner::row_bytes(DType::q8_0, 4096) == 128 * 34);
    CHECK(runner::row_bytes(DType::q4_0, 4096) == 128 * 18);
    CHECK(runner::row_bytes(DType::q4_k, 4096) == 16 * 144);
    CHECK(runner::row_bytes(DType::q5_k, 4096) == 16 * 176);
    CHECK(runner::row_bytes(DType::q6_k, 4096) == 16 * 210);
    CHECK(runner::row_bytes(DType::bf16, 4096) == 8192);
    CHECK(runner::row_bytes(DType::f32, 3) == 12);
    CHECK_FALSE(runner::is_block_type(DType::f16));
}
