// Block quantization of weight matrices (offload/quantize): the layout the GPU kernels read, and how
// far a dequantized weight may be from the original.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "runner/offload/quantize.h"

namespace {

runner::TensorView matrix(const std::vector<float>& values, std::int64_t d_out, std::int64_t d_in) {
    runner::TensorView t;
    t.name = std::string("w");
    t.dtype = runner::DType::f32;
    t.shape = {d_out, d_in};
    t.data = reinterpret_cast<const std::byte*>(values.data());
    t.bytes = values.size() * sizeof(float);
    return t;
}

}  // namespace

TEST_CASE("quantize: every weight comes back within half a step of its block's scale") {
    std::mt19937 rng(7);
    std::normal_distribution<float> d(0.f, 0.05f);
    const std::int64_t d_out = 37, d_in = 96;
    std::vector<float> w(static_cast<std::size_t>(d_out * d_in));
    for (auto& v : w) v = d(rng);
    for (std::size_t i = 0; i < 32; ++i) w[i] = 0.f;  // an all-zero block: scale 0, weights 0
    w[40] = 3.f;                                      // an outlier owns its block's scale
    const auto t = matrix(w, d_out, d_in);
    for (const auto type : {runner::WeightType::q8, runner::WeightType::q4}) {
        CAPTURE(static_cast<int>(type));
        std::vector<std::byte> q(
            runner::quant_bytes(type, static_cast<std::size_t>(d_out), static_cast<std::size_t>(d_in)));
        runner::quantize_matrix(t, type, q.data(), 3);
        const float steps = type == runner::WeightType::q8 ? 127.f : 7.f;
        for (std::int64_t j = 0; j < d_out; ++j)
            for (std::int64_t b = 0; b < d_in / runner::quant_block; ++b) {
                float amax = 0;
                for (int i = 0; i < runner::quant_block; ++i)
                    amax =
                        std::max(amax, std::abs(w[static_cast<std::size_t>(j * d_in + b * runner::quant_block + i)]));
                for (int i = 0; i < runner::quant_block; ++i) {
                    const auto col = static_cast<std::size_t>(b * runner::quant_block + i);
                    const float original = w[static_cast<std::size_t>(j) * static_cast<std::size_t>(d_in) + col];
                    const float back =
                        runner::dequantized(q.data(), type, static_cast<std::size_t>(d_out),
                                            static_cast<std::size_t>(d_in), static_cast<std::size_t>(j), col);
                    CHECK(std::abs(back - original) <= amax / steps * 0.5f + 1e-7f);
                }
            }
        CHECK(runner::dequantized(q.data(), type, 37, 96, 0, 5) == 0.f);
        CHECK(runner::dequantized(q.data(), type, 37, 96, 0, 40) == doctest::Approx(3.f).epsilon(1e-6));
    }
}

TEST_CASE("quantize: sizes, what is compressible, and AIRLLM_COMPRESSION's values") {
    CHECK(runner::quant_bytes(runner::WeightType::q8, 4096, 4096) == 4096u * 4096 + 4096u * 128 * 4);
    CHECK(runner::quant_bytes(runner::WeightType::q4, 4096, 4096) == 4096u * 2048 + 4096u * 128 * 4);
    CHECK(runner::quant_scales_offset(runner::WeightType::q4, 3, 32) == 256);  // 48 bytes of quants, aligned
    std::vector<float> w(3 * 40);
    CHECK_FALSE(runner::quantizable(matrix(w, 3, 40)));
    CHECK(runner::quantizable(matrix(w, 4, 32)));
    runner::Compression c = runner::Compression::none;
    CHECK(runner::parse_compression("8bit", c));
    CHECK(c == runner::Compression::q8);
    CHECK(runner::parse_compression("4bit", c));
    CHECK(c == runner::Compression::q4);
    CHECK(runner::parse_compression("none", c));
    CHECK(c == runner::Compression::none);
    CHECK_FALSE(runner::parse_compression("int8", c));
}
