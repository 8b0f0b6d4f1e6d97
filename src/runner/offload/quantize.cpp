#include "runner/offload/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "runner/backend/cpu/simd.h"

namespace runner {

bool parse_compression(const std::string& text, Compression& out) {
    if (text == "none")
        out = Compression::none;
    else if (text == "8bit")
        out = Compression::q8;
    else if (text == "4bit")
        out = Compression::q4;
    else
        return false;
    return true;
}

const char* compression_name(Compression c) {
    return c == Compression::q8 ? "8bit" : c == Compression::q4 ? "4bit" : "none";
}

WeightType quantized_type(Compression c) { return c == Compression::q4 ? WeightType::q4 : WeightType::q8; }

bool quantizable(const TensorView& w) {
    return !is_block_type(w.dtype) && w.shape.size() == 2 && w.shape[1] % quant_block == 0;
}

namespace {

void quantize_rows(const TensorView& w, WeightType type, std::byte* out, std::size_t first, std::size_t last) {
    const auto d_out = static_cast<std::size_t>(w.shape[0]), d_in = static_cast<std::size_t>(w.shape[1]);
    const std::size_t row_bytes = d_in * dtype_size(w.dtype), blocks = d_in / quant_block;
    auto* scales = reinterpret_cast<float*>(out + quant_scales_offset(type, d_out, d_in));
    const float q_max = type == WeightType::q8 ? 127.f : 7.f;
    std::vector<float> row(d_in);
    for (std::size_t j = first; j < last; ++j) {
        cpu::convert_row(w.dtype, w.data + j * row_bytes, row.data(), d_in);
        for (std::size_t b = 0; b < blocks; ++b) {
            const float* v = row.data() + b * quant_block;
            float amax = 0;
            for (int i = 0; i < quant_block; ++i) amax = std::max(amax, std::abs(v[i]));
            const float scale = amax / q_max;
            const float inv = scale > 0 ? 1.f / scale : 0.f;
            scales[j * blocks + b] = scale;
            for (int i = 0; i < quant_block; ++i) {
                const int q = static_cast<int>(std::clamp(std::nearbyint(v[i] * inv), -q_max - 1, q_max));
                const std::size_t at = j * d_in + b * quant_block + static_cast<std::size_t>(i);
                if (type == WeightType::q8) {
                    out[at] = static_cast<std::byte>(static_cast<std::int8_t>(q));
                } else {
                    auto& byte = out[at / 2];
                    const auto nibble = static_cast<unsigned>(q + 8) & 0xfu;
                    byte = (at % 2 == 0) ? static_cast<std::byte>(nibble)
                                         : static_cast<std::byte>(static_cast<unsigned>(byte) | (nibble << 4));
                }
            }
        }
    }
}

}  // namespace

void quantize_matrix(const TensorView& w, WeightType type, std::byte* out, unsigned threads) {
    const auto d_out = static_cast<std::size_t>(w.shape[0]);
    threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(d_out)));
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t)
        workers.emplace_back(quantize_rows, std::cref(w), type, out, d_out * t / threads, d_out * (t + 1) / threads);
    for (auto& worker : workers) worker.join();
}

float dequantized(const std::byte* q, WeightType type, std::size_t d_out, std::size_t d_in, std::size_t row,
                  std::size_t col) {
    const std::size_t at = row * d_in + col;
    float scale;
    std::memcpy(
        &scale,
        q + quant_scales_offset(type, d_out, d_in) + (row * (d_in / quant_block) + col / quant_block) * sizeof(float),
        sizeof scale);
    if (type == WeightType::q8) return static_cast<float>(static_cast<std::int8_t>(q[at])) * scale;
    const auto byte = static_cast<unsigned>(q[at / 2]);
    const int nibble = static_cast<int>(at % 2 == 0 ? byte & 0xfu : byte >> 4) - 8;
    return static_cast<float>(nibble) * scale;
}

}  // namespace runner
