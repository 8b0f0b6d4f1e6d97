// out[t, j] = sum_i w[j, i] * x[t, i] (+ bias[j]). Two kernels: for a few tokens (decode) a warp per
// output row reads the weights once with 16-byte loads and serves every token from registers, which
// keeps it bound by memory bandwidth; for a prompt a shared-memory tiled product reuses each loaded
// weight across 64 tokens.
#include "runner/backend/gpu/blas.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int matvec_max_tokens = 8;
constexpr int matvec_warps = 4;

// 8 consecutive weights of a row as f32, from one load: 16 bytes (16-bit types), 8 (q8) or 4 (q4);
// two for f32. `at` is the flat index of the first, a multiple of 8, so the 8 share one scale block.
__device__ inline void load8(const void* w, WeightType type, std::size_t at, const float* scales, float* out) {
    switch (type) {
        case WeightType::f32: {
            const float4 a = *reinterpret_cast<const float4*>(static_cast<const float*>(w) + at);
            const float4 b = *reinterpret_cast<const float4*>(static_cast<const float*>(w) + at + 4);
            out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z,
            out[7] = b.w;
            return;
        }
        case WeightType::q8: {
            const uint2 raw = *reinterpret_cast<const uint2*>(static_cast<const signed char*>(w) + at);
            const float scale = scales[at / quant_block];
            const unsigned words[2] = {raw.x, raw.y};
            for (int k = 0; k < 8; ++k)
                out[k] = static_cast<float>(static_cast<signed char>((words[k / 4] >> (8 * (k % 4))) & 0xffu)) * scale;
            return;
        }
        case WeightType::q4: {
            const unsigned raw = *reinterpret_cast<const unsigned*>(static_cast<const unsigned char*>(w) + at / 2);
            const float scale = scales[at / quant_block];
            for (int k = 0; k < 8; ++k)
                out[k] = static_cast<float>(static_cast<int>((raw >> (4 * k)) & 0xfu) - 8) * scale;
            return;
        }
        default: {
            const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const unsigned short*>(w) + at);
            const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
            for (int k = 0; k < 4; ++k) {
                const auto lo = static_cast<unsigned short>(words[k] & 0xffffu),
                           hi = static_cast<unsigned short>(words[k] >> 16);
                out[2 * k] = type == WeightType::bf16 ? bf16_to_f32(lo) : f16_to_f32(lo);
                out[2 * k + 1] = type == WeightType::bf16 ? bf16_to_f32(hi) : f16_to_f32(hi);
            }
        }
    }
}

// One warp per output row j; requires d_in % 8 == 0 (checked by the caller).
template <int n_tokens>
__global__ void matvec_kernel(float* out, const float* x, const void* w, WeightType type, const void* bias,
                              WeightType bias_type, int d_in, int d_out) {
    const int j = blockIdx.x * matvec_warps + threadIdx.x / warp_size;
    const int lane = threadIdx.x % warp_size;
    if (j >= d_out) return;
    float acc[n_tokens] = {};
    const std::size_t row = static_cast<std::size_t>(j) * d_in;
    const float* scales = quant_scales(w, type, static_cast<std::size_t>(d_out), static_cast<std::size_t>(d_in));
    for (int i = lane * 8; i < d_in; i += warp_size * 8) {
        float wv[8];
        load8(w, type, row + i, scales, wv);
        for (int t = 0; t < n_tokens; ++t) {
            const float4 a = *reinterpret_cast<const float4*>(x + static_cast<std::size_t>(t) * d_in + i);
            const float4 b = *reinterpret_cast<const float4*>(x + static_cast<std::size_t>(t) * d_in + i + 4);
            acc[t] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y + wv[6] * b.z +
                      wv[7] * b.w;
        }
    }
    const float b = bias ? load_weight(bias, bias_type, j) : 0.f;
    for (int t = 0; t < n_tokens; ++t) {
        const float sum = warp_sum(acc[t]);
        if (lane == 0) out[static_cast<std::size_t>(t) * d_out + j] = sum + b;
    }
}

constexpr int tile = 64, tile_k = 16;

// 256 threads compute a 64 (tokens) x 64 (outputs) tile, 4x4 each, over k in steps of 16.
__global__ void gemm_kernel(float* out, const float* x, const void* w, WeightType type, const void* bias,
                            WeightType bias_type, int n_tokens, int d_in, int d_out) {
    __shared__ float xs[tile_k][tile + 4];
    __shared__ float ws[tile_k][tile + 4];
    const int t0 = blockIdx.y * tile, j0 = blockIdx.x * tile;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const float* scales = quant_scales(w, type, static_cast<std::size_t>(d_out), static_cast<std::size_t>(d_in));
    float acc[4][4] = {};
    for (int k0 = 0; k0 < d_in; k0 += tile_k) {
        // Each thread loads 4 of the 64x16 elements of each tile.
        for (int e = threadIdx.x; e < tile * tile_k; e += blockDim.x) {
            const int r = e / tile_k, k = e % tile_k;
            const int t = t0 + r, j = j0 + r, kk = k0 + k;
            xs[k][r] = (t < n_tokens && kk < d_in) ? x[static_cast<std::size_t>(t) * d_in + kk] : 0.f;
            ws[k][r] = (j < d_out && kk < d_in)
                           ? weight_at(w, type, static_cast<std::size_t>(j), static_cast<std::size_t>(kk),
                                       static_cast<std::size_t>(d_in), scales)
                           : 0.f;
        }
        __syncthreads();
        for (int k = 0; k < tile_k; ++k) {
            float a[4], b[4];
            for (int m = 0; m < 4; ++m) a[m] = xs[k][ty * 4 + m];
            for (int n = 0; n < 4; ++n) b[n] = ws[k][tx * 4 + n];
            for (int m = 0; m < 4; ++m)
                for (int n = 0; n < 4; ++n) acc[m][n] += a[m] * b[n];
        }
        __syncthreads();
    }
    for (int m = 0; m < 4; ++m) {
        const int t = t0 + ty * 4 + m;
        if (t >= n_tokens) continue;
        for (int n = 0; n < 4; ++n) {
            const int j = j0 + tx * 4 + n;
            if (j < d_out)
                out[static_cast<std::size_t>(t) * d_out + j] =
                    acc[m][n] + (bias ? load_weight(bias, bias_type, j) : 0.f);
        }
    }
}

template <int n>
void launch_matvec(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
                   int d_in, int d_out, cudaStream_t s) {
    const unsigned blocks = static_cast<unsigned>((d_out + matvec_warps - 1) / matvec_warps);
    matvec_kernel<n><<<blocks, matvec_warps * warp_size, 0, s>>>(out, x, w, type, bias, bias_type, d_in, d_out);
}

}  // namespace

void matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
            int n_tokens, int d_in, int d_out, const Stream& stream, const Blas* blas) {
    if (n_tokens == 0) return;
    if (blas && n_tokens >= blas_min_tokens &&
        blas_matmul(out, x, w, type, bias, bias_type, n_tokens, d_in, d_out, stream, *blas))
        return;
    const cudaStream_t s = native(stream);
    if (n_tokens <= matvec_max_tokens && d_in % 8 == 0) {
        switch (n_tokens) {
            case 1: launch_matvec<1>(out, x, w, type, bias, bias_type, d_in, d_out, s); break;
            case 2: launch_matvec<2>(out, x, w, type, bias, bias_type, d_in, d_out, s); break;
            case 3: launch_matvec<3>(out, x, w, type, bias, bias_type, d_in, d_out, s); break;
            case 4: launch_matvec<4>(out, x, w, type, bias, bias_type, d_in, d_out, s); break;
            case 5: launch_matvec<5>(out, x, w, type, bias, bias_type, d_in, d_out, s); break;
            case 6: launch_matvec<6>(out, x, w, type, bias, bias_type, d_in, d_out, s); break;
            case 7: launch_matvec<7>(out, x, w, type, bias, bias_type, d_in, d_out, s); break;
            default: launch_matvec<8>(out, x, w, type, bias, bias_type, d_in, d_out, s); break;
        }
    } else {
        const dim3 grid(static_cast<unsigned>((d_out + tile - 1) / tile),
                        static_cast<unsigned>((n_tokens + tile - 1) / tile));
        gemm_kernel<<<grid, 256, 0, s>>>(out, x, w, type, bias, bias_type, n_tokens, d_in, d_out);
    }
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
