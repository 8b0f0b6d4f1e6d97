// The integer products with 8-bit activations, for every format they take: ggml's blocks from
// tests/fixtures/gguf/blocks.gguf (gguf's own values beside them, tools/reference/make_gguf_fixtures.py)
// and our q8/q4 as offload/quantize writes them. Each product must be the exact dot of the weights'
// values with the activations' quantized values (up to f32 rounding), the AVX2 and portable paths bit
// for bit equal, and the distance to the f32 product inside what the activations' rounding allows.
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runner/backend/cpu/int8_dot.h"
#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"
#include "runner/model/gguf.h"
#include "runner/model/gguf_model.h"
#include "runner/model/safetensors.h"
#include "runner/offload/quantize.h"

namespace {

using runner::WeightType;
using runner::cpu::Int8Row;

// Rows of one format with the values their weights stand for, row-major.
struct Rows {
    WeightType type = WeightType::q8;
    std::size_t rows = 0, cols = 0, row_bytes = 0;
    std::vector<std::byte> bytes;
    std::vector<float> values;
    const float* scales = nullptr;  // ours: [rows, cols / 32]

    Int8Row row(std::size_t r) const {
        return {bytes.data() + r * row_bytes, scales ? scales + r * (cols / runner::quant_block) : nullptr};
    }
};

WeightType weight_type(const std::string& name) {
    if (name == "q8_0") return WeightType::q8_0;
    if (name == "q4_0") return WeightType::q4_0;
    if (name == "q4_k") return WeightType::q4_k;
    if (name == "q5_k") return WeightType::q5_k;
    return WeightType::q6_k;
}

Rows gguf_rows(const std::string& name) {
    auto file = runner::GgufFile::open(std::string(OAR_FIXTURES) + "/gguf/blocks.gguf");
    REQUIRE(file.ok());
    Rows r;
    r.type = weight_type(name);
    for (const auto& t : file->header().tensors) {
        const auto data = file->data(t);
        if (t.name == "q." + name) {
            r.rows = static_cast<std::size_t>(t.dims[1]);
            r.cols = static_cast<std::size_t>(t.dims[0]);
            r.bytes.assign(data.begin(), data.end());
            r.row_bytes = r.bytes.size() / r.rows;
        }
        if (t.name == "f." + name) {
            r.values.resize(data.size() / sizeof(float));
            std::memcpy(r.values.data(), data.data(), data.size());
        }
    }
    REQUIRE(r.rows == 4);
    REQUIRE(r.values.size() == r.rows * r.cols);
    return r;
}

Rows our_rows(WeightType type, std::size_t rows, std::size_t cols, std::mt19937& rng) {
    std::vector<float> source(rows * cols);
    for (auto& v : source) v = std::normal_distribution<float>(0.f, 0.05f)(rng);
    runner::TensorView t;
    t.dtype = runner::DType::f32;
    t.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
    t.data = reinterpret_cast<const std::byte*>(source.data());
    t.bytes = source.size() * sizeof(float);
    Rows r;
    r.type = type;
    r.rows = rows;
    r.cols = cols;
    r.row_bytes = type == WeightType::q8 ? cols : cols / 2;
    r.bytes.resize(runner::quant_bytes(type, rows, cols));
    runner::quantize_matrix(t, type, r.bytes.data(), 2);
    r.scales = reinterpret_cast<const float*>(r.bytes.data() + runner::quant_scales_offset(type, rows, cols));
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t c = 0; c < cols; ++c)
            r.values.push_back(runner::dequantized(r.bytes.data(), type, rows, cols, i, c));
    return r;
}

std::vector<float> random_x(std::size_t n, std::mt19937& rng) {
    std::vector<float> x(n);
    for (auto& v : x) v = std::normal_distribution<float>()(rng);
    return x;
}

// Every row's product over its first n weights, on the current path, against the exact sums.
void check_products(const Rows& m, std::size_t n, std::mt19937& rng) {
    CAPTURE(n);
    const auto x = random_x(n, rng);
    runner::cpu::Int8Activations a;
    runner::cpu::quantize_activations(x.data(), n, a);
    const auto xq = runner::cpu::dequantized(a);
    for (std::size_t r = 0; r < m.rows; ++r) {
        CAPTURE(r);
        const float* w = m.values.data() + r * m.cols;
        double exact_q = 0, exact_f = 0, norm = 0, rounding = 0;
        for (std::size_t i = 0; i < n; ++i) {
            exact_q += double(w[i]) * xq[i];
            exact_f += double(w[i]) * x[i];
            norm += std::abs(double(w[i]) * xq[i]);
            rounding += std::abs(double(w[i])) * a.d[i / runner::cpu::int8_block] / 2;
        }
        const float got = runner::cpu::dot_int8(m.type, m.row(r), a, n);
        CHECK(std::abs(got - exact_q) <= 1e-5 * norm);
        // each activation is within half a step of its block's scale: that bounds the product's distance
        CHECK(std::abs(got - exact_f) <= rounding + 1e-5 * norm);
        float two[2];
        runner::cpu::dot_int8_rows2(m.type, m.row(r), m.row((r + 1) % m.rows), a, n, two);
        CHECK(two[0] == got);
        CHECK(two[1] == runner::cpu::dot_int8(m.type, m.row((r + 1) % m.rows), a, n));
    }
}

// The product on the AVX2 path and the portable one, bit for bit, with the same activations.
void check_paths_agree(const Rows& m, std::size_t n, std::mt19937& rng) {
    const auto x = random_x(n, rng);
    runner::cpu::Int8Activations a;
    runner::cpu::quantize_activations(x.data(), n, a);
    std::vector<float> fast;
    for (std::size_t r = 0; r < m.rows; ++r) fast.push_back(runner::cpu::dot_int8(m.type, m.row(r), a, n));
    runner::cpu::force_portable(true);
    runner::cpu::Int8Activations portable;
    runner::cpu::quantize_activations(x.data(), n, portable);
    CHECK(portable.q == a.q);
    CHECK(portable.d == a.d);
    CHECK(portable.d_sum == a.d_sum);
    CHECK(portable.sum16 == a.sum16);
    for (std::size_t r = 0; r < m.rows; ++r) CHECK(runner::cpu::dot_int8(m.type, m.row(r), a, n) == fast[r]);
    runner::cpu::force_portable(false);
}

void check_format(const Rows& m, std::initializer_list<std::size_t> lengths) {
    std::mt19937 rng(17);
    for (const std::size_t n : lengths) {
        for (const bool portable : {false, true}) {
            CAPTURE(portable);
            runner::cpu::force_portable(portable);
            check_products(m, n, rng);
        }
        runner::cpu::force_portable(false);
        check_paths_agree(m, n, rng);
    }
}

}  // namespace

TEST_CASE("int8 activations: each within half a step of its block's scale, the sums what d_sum and sum16 say") {
    std::mt19937 rng(3);
    auto x = random_x(4096, rng);
    for (std::size_t i = 64; i < 96; ++i) x[i] = 0;  // block 2: one large value, the rest zero
    x[70] = 1e3f;
    for (std::size_t i = 96; i < 128; ++i) x[i] = 0;  // block 3: all zero, so scale 0 and quants 0
    for (const bool portable : {false, true}) {
        CAPTURE(portable);
        runner::cpu::force_portable(portable);
        runner::cpu::Int8Activations a;
        runner::cpu::quantize_activations(x.data(), x.size(), a);
        REQUIRE(a.q.size() == x.size());
        REQUIRE(a.d.size() == x.size() / 32);
        const auto back = runner::cpu::dequantized(a);
        for (std::size_t b = 0; b < a.d.size(); ++b) {
            CAPTURE(b);
            float amax = 0;
            int sum = 0, halves[2] = {};
            for (std::size_t l = 0; l < 32; ++l) {
                amax = std::max(amax, std::abs(x[32 * b + l]));
                sum += a.q[32 * b + l];
                halves[l / 16] += a.q[32 * b + l];
                CHECK(std::abs(back[32 * b + l] - x[32 * b + l]) <= a.d[b] * 0.5f * (1 + 1e-5f));
                CHECK(std::abs(int(a.q[32 * b + l])) <= 127);
            }
            CHECK(a.d[b] == amax / 127.f);
            CHECK(a.d_sum[b] == a.d[b] * static_cast<float>(sum));
            CHECK(a.sum16[2 * b] == halves[0]);
            CHECK(a.sum16[2 * b + 1] == halves[1]);
        }
        CHECK(a.d[3] == 0.f);
        CHECK(a.q[100] == 0);
        CHECK(a.q[70] == 127);
    }
    runner::cpu::force_portable(false);
}

// 512 weights: two K-quant super-blocks, two groups of 8 of the 32-weight blocks. 352 (11 blocks) leaves
// a group of 3, for the formats whose blocks are 32 weights.
TEST_CASE("int8 products: Q8_0 rows") { check_format(gguf_rows("q8_0"), {512, 352}); }
TEST_CASE("int8 products: Q4_0 rows") { check_format(gguf_rows("q4_0"), {512, 352}); }
TEST_CASE("int8 products: Q4_K rows") { check_format(gguf_rows("q4_k"), {512}); }
TEST_CASE("int8 products: Q5_K rows") { check_format(gguf_rows("q5_k"), {512}); }
TEST_CASE("int8 products: Q6_K rows") { check_format(gguf_rows("q6_k"), {512}); }
TEST_CASE("int8 products: our q8 and q4 rows, including a group of 3 blocks") {
    std::mt19937 rng(29);
    for (const auto type : {WeightType::q8, WeightType::q4}) {
        CAPTURE(static_cast<int>(type));
        check_format(our_rows(type, 5, 352, rng), {352});
        check_format(our_rows(type, 3, 1024, rng), {1024});
    }
}

TEST_CASE("int8 products: a weight of -128 in a Q8_0 row, the extreme maddubs must hold") {
    // ggml never writes -128, but a file may hold it; |w| = 128 times 127 twice still fits an int16.
    Rows m = gguf_rows("q8_0");
    for (std::size_t r = 0; r < m.rows; ++r)
        for (std::size_t b = 0; b < m.cols / 32; ++b) {
            std::byte* block = m.bytes.data() + r * m.row_bytes + b * 34;
            std::uint16_t half;
            std::memcpy(&half, block, 2);
            const float d = runner::cpu::f16_to_f32(half);
            for (std::size_t l = 0; l < 32; ++l) {
                block[2 + l] = std::byte{0x80};
                m.values[r * m.cols + b * 32 + l] = -128 * d;
            }
        }
    std::mt19937 rng(5);
    std::vector<float> x(m.cols, 1.f);
    runner::cpu::Int8Activations a;
    runner::cpu::quantize_activations(x.data(), m.cols, a);
    CHECK(a.q[0] == 127);
    for (const bool portable : {false, true}) {
        runner::cpu::force_portable(portable);
        check_products(m, m.cols, rng);
    }
    runner::cpu::force_portable(false);
}

// Token t's product with every row of m on its own, quantized alone: what matmul must give for it.
std::vector<float> one_token(const Rows& m, const float* x) {
    runner::cpu::Int8Activations a;
    runner::cpu::quantize_activations(x, m.cols, a);
    std::vector<float> out;
    for (std::size_t r = 0; r < m.rows; ++r) out.push_back(runner::cpu::dot_int8(m.type, m.row(r), a, m.cols));
    return out;
}

TEST_CASE("int8 products: matmul and swiglu_matmul take them for a token and a prompt's tiles alike") {
    // 45 rows (tiles of 4 and one), 1 to 9 tokens (a tile of 8 and one), 1 and 3 threads, both paths: every
    // token's results are its one-token products bit for bit, so a prompt and its decode agree.
    std::mt19937 rng(41);
    for (const bool portable : {false, true})
        for (const auto type : {WeightType::q8, WeightType::q4})
            for (const unsigned threads : {1u, 3u})
                for (const std::size_t n_tokens : {1u, 2u, 5u, 9u}) {
                    CAPTURE(portable);
                    CAPTURE(static_cast<int>(type));
                    CAPTURE(threads);
                    CAPTURE(n_tokens);
                    runner::cpu::force_portable(portable);
                    runner::cpu::ThreadPool pool(threads);
                    const Rows gate = our_rows(type, 45, 96, rng), up = our_rows(type, 45, 96, rng);
                    const runner::cpu::Matrix g(gate.bytes.data(), type, gate.rows, gate.cols),
                        u(up.bytes.data(), type, up.rows, up.cols);
                    const auto x = random_x(n_tokens * 96, rng);
                    std::vector<float> out(n_tokens * 45), fused(out.size()), both(2 * out.size());
                    runner::cpu::matmul(out.data(), x.data(), g, nullptr, n_tokens, pool);
                    runner::cpu::swiglu_matmul(fused.data(), g, u, x.data(), n_tokens, pool);
                    // two products of one format in one pass share one quantization of x
                    const runner::cpu::Projection parts[] = {{both.data(), g}, {both.data() + out.size(), u}};
                    runner::cpu::matmul(parts, x.data(), n_tokens, pool);
                    for (std::size_t t = 0; t < n_tokens; ++t) {
                        CAPTURE(t);
                        const auto gt = one_token(gate, x.data() + t * 96), ut = one_token(up, x.data() + t * 96);
                        for (std::size_t r = 0; r < 45; ++r) {
                            CAPTURE(r);
                            CHECK(out[t * 45 + r] == gt[r]);
                            CHECK(both[t * 45 + r] == gt[r]);
                            CHECK(both[out.size() + t * 45 + r] == ut[r]);
                            float want = gt[r];
                            runner::cpu::swiglu(&want, &ut[r], 1);
                            CHECK(fused[t * 45 + r] == want);
                        }
                    }
                }
    runner::cpu::force_portable(false);
}

TEST_CASE("int8 products: a prompt's tiles over GGUF's blocks equal each token's product, with VNNI too") {
    std::mt19937 rng(43);
    runner::cpu::ThreadPool pool(2);
    for (const char* name : {"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"}) {
        CAPTURE(name);
        const Rows m = gguf_rows(name);
        runner::TensorView view;
        const std::string wanted = name;
        for (const auto d : {runner::DType::q8_0, runner::DType::q4_0, runner::DType::q4_k, runner::DType::q5_k,
                             runner::DType::q6_k}) {
            std::string d_name = runner::dtype_name(d);
            for (auto& ch : d_name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (d_name == wanted) view.dtype = d;
        }
        REQUIRE(runner::is_block_type(view.dtype));
        view.shape = {static_cast<std::int64_t>(m.rows), static_cast<std::int64_t>(m.cols)};
        view.data = m.bytes.data();
        view.bytes = m.bytes.size();
        // AVX2's tiles with VNNI (where the CPU has it) and without, and the portable ones
        for (const auto& [portable, no_vnni] :
             {std::pair{false, false}, std::pair{false, true}, std::pair{true, true}}) {
            CAPTURE(portable);
            CAPTURE(no_vnni);
            runner::cpu::force_portable(portable);
            runner::cpu::force_no_vnni(no_vnni);
            const auto x = random_x(6 * m.cols, rng);
            std::vector<float> out(6 * m.rows);
            runner::cpu::matmul(out.data(), x.data(), view, nullptr, 6, pool);
            for (std::size_t t = 0; t < 6; ++t) {
                const auto want = one_token(m, x.data() + t * m.cols);
                for (std::size_t r = 0; r < m.rows; ++r) CHECK(out[t * m.rows + r] == want[r]);
            }
        }
    }
    runner::cpu::force_portable(false);
    runner::cpu::force_no_vnni(false);
    const std::string paths = runner::cpu::using_vnni() ? "with VNNI and without" : "without VNNI (this CPU has none)";
    MESSAGE("AVX2 tiles ran " << paths);
}

TEST_CASE("int8 activations: a block with an infinity or a NaN gives NaN products, a vanishing one zeros") {
    std::mt19937 rng(9);
    const Rows m = our_rows(WeightType::q8, 2, 128, rng);
    for (const bool portable : {false, true}) {
        CAPTURE(portable);
        runner::cpu::force_portable(portable);
        for (const float poison : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
            auto x = random_x(128, rng);
            x[70] = poison;
            runner::cpu::Int8Activations a;
            runner::cpu::quantize_activations(x.data(), 128, a);
            CHECK(std::isnan(a.d[2]));
            CHECK(a.q[70] == 0);
            CHECK(std::isfinite(a.d[1]));
            CHECK(std::isnan(runner::cpu::dot_int8(m.type, m.row(0), a, 128)));
        }
        std::vector<float> tiny(128, 1e-39f);  // below the smallest normal float: 127 / amax is infinite
        runner::cpu::Int8Activations a;
        runner::cpu::quantize_activations(tiny.data(), 128, a);
        for (const auto q : a.q) CHECK(q == 0);
        CHECK(runner::cpu::dot_int8(m.type, m.row(0), a, 128) == 0.f);
    }
    runner::cpu::force_portable(false);
}
