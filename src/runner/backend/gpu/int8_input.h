// Decode's int8 activations: the layout the quantized products read (matvec_int8.cu) and the quantization
// that writes it, shared by the kernel that quantizes a product's input and by decode attention, which
// writes its output this way for the output projection. Each block of 32 activations rounds as the CPU's
// int8 products round theirs (cpu::quantize_activations, the same steps), so both engines see the same inputs.
#pragma once

#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

constexpr int act_block = 32;  // activations per int8 scale
constexpr int act_half = 16;   // activations per sum

// In a scratch with room for [n_tokens, d_in] floats, of which it takes 1.5 bytes an element: the quants
// [n_tokens, d_in], then per 16 of them their block's scale d and d times their sum [n_tokens, d_in / 16],
// which a product loads as one pair.
struct Int8Input {
    signed char* q = nullptr;
    float2* ds = nullptr;
};

inline Int8Input int8_input(float* scratch, int n_tokens, int d_in) {
    auto* q = reinterpret_cast<signed char*>(scratch);
    return {q, reinterpret_cast<float2*>(q + static_cast<std::size_t>(n_tokens) * d_in)};
}

#if defined(__CUDACC__) || defined(__HIPCC__)
// Quantizes a block of 32 activations that 32 / N adjacent lanes (aligned in the warp) hold N apiece, the
// lane's first at flat index `at` ([n_tokens, d_in] numbered as one row): d = the block's largest magnitude
// / 127, q = round(x / d) to nearest even; a block of zeros (or too small for 1 / d) is all zeros, a block
// with an infinity or NaN has zeros and a NaN scale, which its products carry. Every lane of the warp calls
// it (it shuffles); a lane outside the activations passes inside = false and writes nothing, and so does the
// rest of its block.
template <int N>
__device__ inline void quantize_block(Int8Input in, std::size_t at, const float (&v)[N], bool inside) {
    static_assert(N == 1 || N == 4 || N == 8, "a lane's quants are stored as a byte or whole words");
    constexpr int lanes = act_block / N;
    float amax = 0.f, infinite = 0.f;
    for (int l = 0; l < N; ++l) {
        amax = fmaxf(amax, fabsf(v[l]));
        infinite = fabsf(v[l]) <= 3.402823466e38f ? infinite : 1.f;
    }
    for (int o = 1; o < lanes; o *= 2)
        amax = fmaxf(amax, shfl_xor(amax, o)), infinite = fmaxf(infinite, shfl_xor(infinite, o));
    const bool finite = infinite == 0.f;
    const float d = finite ? amax / 127.f : __uint_as_float(0x7fc00000u);
    const float inverse = finite && d >= 1.175494351e-38f ? 1.f / d : 0.f;
    unsigned words[N < 4 ? 1 : N / 4] = {};
    int sum = 0;
    for (int l = 0; l < N; ++l) {
        const int q = __float2int_rn(v[l] * inverse);
        words[l / 4] |= (static_cast<unsigned>(q) & 0xffu) << (8 * (l % 4));
        sum += q;
    }
    float sum16 = static_cast<float>(sum);  // exact: |sum| < 2^11
    for (int o = 1; o < act_half / N; o *= 2) sum16 += shfl_xor(sum16, o);
    if (!inside) return;
    if constexpr (N == 8)
        *reinterpret_cast<uint2*>(in.q + at) = make_uint2(words[0], words[1]);
    else if constexpr (N == 4)
        *reinterpret_cast<unsigned*>(in.q + at) = words[0];
    else
        in.q[at] = static_cast<signed char>(words[0]);
    if (at % act_half == 0) in.ds[at / act_half] = make_float2(d, d * sum16);
}
#endif

}  // namespace runner::gpu
