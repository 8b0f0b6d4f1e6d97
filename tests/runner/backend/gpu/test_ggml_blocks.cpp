// The GPU kernels' reading of GGUF's blocks (backend/gpu/ggml_blocks.h, plain C++ that compiles for the
// host too) against gguf's own numpy dequantization of the same random blocks
// (tests/fixtures/gguf/blocks.gguf): every element, and every piece of 32 as the int8 decode kernel
// reads it. Runs in CI without a GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "runner/backend/gpu/ggml_blocks.h"
#include "runner/model/gguf.h"
#include "runner/model/gguf_model.h"
#include "runner/offload/layer_slab.h"

namespace {

void check_type(const std::string& name) {
    CAPTURE(name);
    auto file = runner::GgufFile::open(std::string(OAR_FIXTURES) + "/gguf/blocks.gguf");
    REQUIRE(file.ok());
    const runner::GgufTensor *q = nullptr, *f = nullptr;
    for (const auto& t : file->header().tensors) {
        if (t.name == "q." + name) q = &t;
        if (t.name == "f." + name) f = &t;
    }
    REQUIRE(q);
    REQUIRE(f);
    std::vector<float> want(f->bytes / sizeof(float));
    std::memcpy(want.data(), file->data(*f).data(), f->bytes);
    const auto type = runner::stored_type(*runner::engine_dtype(*q->type));
    REQUIRE(runner::is_ggml_block(type));
    const void* blocks = file->data(*q).data();
    const auto close = [](float got, float expected) {
        return std::abs(got - expected) <= 1e-5f * (std::abs(expected) + 1e-3f);
    };
    std::size_t wrong_elements = 0, wrong_chunks = 0;
    for (std::size_t at = 0; at < want.size(); ++at)
        wrong_elements += !close(runner::gpu::ggml_weight(blocks, type, at), want[at]);
    for (std::size_t at = 0; at < want.size(); at += 8) {
        const auto chunk = runner::gpu::ggml_chunk(type, blocks, at);
        for (int k = 0; k < 8; ++k)
            wrong_chunks +=
                !close(chunk.scale * runner::gpu::ggml_chunk_quant(type, chunk, k) - chunk.min, want[at + k]);
    }
    CHECK(wrong_elements == 0);
    CHECK(wrong_chunks == 0);
    // The decode kernel's pieces, the whole tensor read as one row: every weight once, from the piece that
    // holds it, its quant a signed byte.
    const std::size_t n_pieces = want.size() / runner::gpu::piece_weights;
    std::vector<int> seen(want.size(), 0);
    std::size_t wrong_pieces = 0;
    for (std::size_t p = 0; p < n_pieces; ++p) {
        const auto* row = static_cast<const unsigned char*>(blocks);
        const auto piece =
            runner::gpu::piece_ints(type, runner::gpu::piece_load(type, row, static_cast<int>(p)), static_cast<int>(p));
        for (int h = 0; h < 2; ++h)
            for (int k = 0; k < 16; ++k) {
                const auto at = static_cast<std::size_t>(piece.column[h] + k);
                REQUIRE(at < want.size());
                ++seen[at];
                const auto quant = static_cast<signed char>(static_cast<unsigned>(piece.q[h][k / 4]) >> (8 * (k % 4)));
                wrong_pieces += !close(piece.scale[h] * static_cast<float>(quant) - piece.min[h], want[at]);
            }
    }
    CHECK(n_pieces > 0);
    CHECK(wrong_pieces == 0);
    CHECK(std::count(seen.begin(), seen.end(), 1) == static_cast<std::ptrdiff_t>(want.size()));
    CHECK(runner::gpu::ggml_row_bytes(type, want.size()) == q->bytes);
}

}  // namespace

TEST_CASE("GPU's GGUF blocks on the host: Q8_0 as gguf dequantizes it") { check_type("q8_0"); }
TEST_CASE("GPU's GGUF blocks on the host: Q4_0 as gguf dequantizes it") { check_type("q4_0"); }
TEST_CASE("GPU's GGUF blocks on the host: Q4_K as gguf dequantizes it") { check_type("q4_k"); }
TEST_CASE("GPU's GGUF blocks on the host: Q5_K as gguf dequantizes it") { check_type("q5_k"); }
TEST_CASE("GPU's GGUF blocks on the host: Q6_K as gguf dequantizes it") { check_type("q6_k"); }

TEST_CASE("GPU's GGUF blocks on the host: f16 scales decode as IEEE half, subnormals and signs included") {
    const auto half = [](unsigned bits) {
        const unsigned char b[2] = {static_cast<unsigned char>(bits & 0xff), static_cast<unsigned char>(bits >> 8)};
        return runner::gpu::half_at(b);
    };
    CHECK(half(0x3c00) == 1.f);
    CHECK(half(0xc000) == -2.f);
    CHECK(half(0x0001) == std::ldexp(1.f, -24));
    CHECK(half(0x8000) == 0.f);
    CHECK(half(0x7bff) == 65504.f);
    CHECK(std::isinf(half(0x7c00)));
    CHECK(half(0x1400) == std::ldexp(1.f, -10));
}
