#include "runner/selftest/test_data.h"

#include "runner/backend/cpu/int8_dot.h"
#include "runner/offload/quantize.h"

#include <cctype>
#include <cstring>

namespace runner::selftest {

namespace {

// A positive f16 between 2^-8 and 2^-5: the size of the scales real quantized weights have.
std::uint16_t small_f16(std::mt19937& rng) {
    std::uniform_int_distribution<int> exponent(7, 9), mantissa(0, 1023);
    return static_cast<std::uint16_t>((exponent(rng) << 10) | mantissa(rng));
}

// Where ggml's blocks keep their f16 scales (d, and dmin for the K-quants' minimums).
std::vector<std::size_t> f16_fields(DType dtype) {
    switch (dtype) {
        case DType::q8_0:
        case DType::q4_0: return {0};
        case DType::q4_k:
        case DType::q5_k: return {0, 2};
        case DType::q6_k: return {208};
        default: return {};
    }
}

}  // namespace

std::vector<float> random_floats(std::mt19937& rng, std::size_t n, float scale) {
    std::normal_distribution<float> d(0.f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

std::vector<float> int8_rounded(const std::vector<float>& x) {
    cpu::Int8Activations a;
    cpu::quantize_activations(x.data(), x.size(), a);
    return cpu::dequantized(a);
}

std::vector<std::byte> random_weights(std::mt19937& rng, DType dtype, std::size_t rows, std::size_t cols) {
    std::vector<std::byte> bytes(rows * row_bytes(dtype, cols));
    if (dtype == DType::f32) {
        const auto values = random_floats(rng, rows * cols, 0.5f);
        std::memcpy(bytes.data(), values.data(), bytes.size());
        return bytes;
    }
    std::uniform_int_distribution<int> byte(0, 255);
    if (!is_block_type(dtype)) {
        // Finite 16-bit floats of both signs with exponents around 1, some f16 denormals.
        std::uniform_int_distribution<int> mant(0, 127), sign(0, 1), exp(-6, 1);
        for (std::size_t i = 0; i < rows * cols; ++i) {
            std::uint16_t h = 0;
            if (dtype == DType::bf16) {
                h = static_cast<std::uint16_t>((sign(rng) << 15) | ((127 + exp(rng)) << 7) | mant(rng));
            } else {
                const int e = exp(rng) - (mant(rng) < 4 ? 30 : 0);
                h = static_cast<std::uint16_t>((sign(rng) << 15) | (std::max(0, 15 + e) << 10) | (mant(rng) << 3));
            }
            std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
        return bytes;
    }
    for (auto& b : bytes) b = static_cast<std::byte>(byte(rng));
    const auto fields = f16_fields(dtype);
    for (std::size_t block = 0; block < bytes.size() / block_bytes(dtype); ++block)
        for (const std::size_t field : fields) {
            const auto h = small_f16(rng);
            std::memcpy(bytes.data() + block * block_bytes(dtype) + field, &h, 2);
        }
    return bytes;
}

std::vector<std::byte> random_quantized(std::mt19937& rng, WeightType type, std::size_t rows, std::size_t cols) {
    const auto bf16 = random_weights(rng, DType::bf16, rows, cols);
    std::vector<std::byte> q(quant_bytes(type, rows, cols));
    quantize_matrix(view_of(bf16, DType::bf16, rows, cols), type, q.data(), 1);
    return q;
}

std::string format_name(DType dtype) {
    std::string name = dtype_name(dtype);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
}

TensorView view_of(const std::vector<std::byte>& bytes, DType dtype, std::size_t rows, std::size_t cols) {
    TensorView v;
    v.name = "selftest";
    v.dtype = dtype;
    v.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
    v.data = bytes.data();
    v.bytes = bytes.size();
    return v;
}

TensorView vector_view(const std::vector<std::byte>& bytes, DType dtype, std::size_t n) {
    auto v = view_of(bytes, dtype, 1, n);
    v.shape = {static_cast<std::int64_t>(n)};
    return v;
}

}  // namespace runner::selftest
