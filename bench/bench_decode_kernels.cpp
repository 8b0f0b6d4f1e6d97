// Decode's GPU kernels one at a time at Llama-3.1-8B's shapes, one token, BF16 weights: the fused
// q/k/v product with its rmsnorm (also as a Q4_K_M layer's, Q4_K with v in Q6_K), the output projection into
// the residual, gate/up with SwiGLU, the down projection (these two also 8- and 4-bit quantized and in GGUF's
// Q8_0, Q4_0, Q4_K, Q5_K and Q6_K blocks), the output head, then attention with its RoPE and cache writes (one
// launch, as a one-token step runs them) over an f16 cache at several context lengths. A decode step is these kernels
// in a row, so each row shows where the step's time goes: microseconds per call, the bytes it must read (weights or
// cache) as GB/s, and the bound, those bytes at the device-copy rate (read and write counted), with achieved/bound.
// Weights rotate among copies that together exceed the L2 cache, so every call reads from memory. --tokens runs the
// products for a pass of 2-8 tokens instead (each weight read once for all of them: the same bound), as a short
// prompt's suffix does; RoPE and attention stay at one token.
//
// usage: bench_decode_kernels [--iterations N] [--tokens N]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "runner/backend/gpu/backend.h"
#include "runner/offload/layer_slab.h"
#include "runner/selftest/gpu_bandwidth.h"

namespace gpu = runner::gpu;

namespace {

constexpr int n_embd = 4096, n_ff = 14336, n_head = 32, n_head_kv = 8, head_dim = 128, n_vocab = 128256;
constexpr std::size_t rotation_bytes = std::size_t{512} << 20;  // well past any L2

// `count` device buffers of `bytes` each holding small bf16 values (the bit pattern of 0.0039).
std::vector<gpu::DeviceBuffer> bf16_copies(std::size_t bytes, std::size_t count, const gpu::Stream& s) {
    const std::vector<std::uint16_t> host(bytes / 2, 0x3b80);
    std::vector<gpu::DeviceBuffer> out;
    for (std::size_t i = 0; i < count; ++i) {
        out.emplace_back(bytes);
        gpu::copy_to_device(out.back().data(), host.data(), bytes, s);
    }
    s.synchronize();
    return out;
}

std::size_t copies_for(std::size_t bytes) { return std::max<std::size_t>(1, (rotation_bytes + bytes - 1) / bytes); }

// Average microseconds of `call(i)` over `iterations` calls, after a warm-up call.
double time_us(const std::function<void(int)>& call, int iterations, const gpu::Stream& s) {
    call(0);
    gpu::Event start(true), stop(true);
    start.record(s);
    for (int i = 0; i < iterations; ++i) call(i);
    stop.record(s);
    stop.synchronize();
    return static_cast<double>(stop.elapsed_ms_since(start)) * 1e3 / iterations;
}

void row(const char* name, double us, std::size_t bytes, double hbm_gbs) {
    const double gbs = static_cast<double>(bytes) / (us * 1e3);
    const double bound_us = static_cast<double>(bytes) / (hbm_gbs * 1e3);
    std::printf("%-34s %10.1f %10.1f %10.0f %9.0f%%\n", name, us, bound_us, gbs, 100 * bound_us / us);
}

}  // namespace

int main(int argc, char** argv) {
    int iterations = 50, tokens = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--iterations" && i + 1 < argc) {
            iterations = std::atoi(argv[++i]);
        } else if (arg == "--tokens" && i + 1 < argc) {
            tokens = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: bench_decode_kernels [--iterations N] [--tokens N]\n");
            return 2;
        }
    }
    const char* refused = iterations < 1             ? "--iterations must be at least 1"
                          : tokens < 1 || tokens > 8 ? "--tokens must be 1 to 8, the passes decode's products take"
                          : gpu::device_count() == 0 ? "no GPU is visible"
                                                     : nullptr;
    if (refused) {
        std::fprintf(stderr, "bench_decode_kernels: %s\n", refused);
        return 2;
    }
    try {
        gpu::use_device(0);
        const double hbm = runner::selftest::device_copy_gbs();
        std::printf("device: %s; device copy %.0f GB/s (read and write counted)\n\n", gpu::device_info().name.c_str(),
                    hbm);
        const std::string title = tokens == 1 ? "kernel (one token)" : "kernel (" + std::to_string(tokens) + " tokens)";
        std::printf("%-34s %10s %10s %10s %10s\n", title.c_str(), "us", "bound us", "GB/s", "achieved");
        gpu::Stream s;
        const auto bf16 = runner::WeightType::bf16;
        const int q_width = n_head * head_dim, kv_width = n_head_kv * head_dim;
        const auto t = static_cast<std::size_t>(tokens);
        gpu::DeviceBuffer x(t * n_ff * 4), xb(t * n_ff * 4), q(t * q_width * 4), k(t * kv_width * 4),
            v(t * kv_width * 4), gate(t * n_ff * 4), up(t * n_ff * 4), logits(t * n_vocab * 4);
        const std::vector<float> ones(t * n_ff, 0.01f);
        gpu::copy_to_device(x.data(), ones.data(), ones.size() * 4, s);
        const auto norm = bf16_copies(n_embd * 2, 1, s);
        const gpu::Norm rms{norm[0].data(), bf16, 1e-5f};

        const std::size_t qkv_bytes = std::size_t{2} * n_embd * (q_width + 2 * kv_width);
        {
            const auto wq = bf16_copies(std::size_t{2} * n_embd * q_width, copies_for(qkv_bytes), s);
            const auto wk = bf16_copies(std::size_t{2} * n_embd * kv_width, wq.size(), s);
            const auto wv = bf16_copies(std::size_t{2} * n_embd * kv_width, wq.size(), s);
            row("rmsnorm + q/k/v",
                time_us(
                    [&](int i) {
                        const auto c = static_cast<std::size_t>(i) % wq.size();
                        const gpu::Product p[] = {{q.as<float>(), wq[c].data(), bf16, q_width},
                                                  {k.as<float>(), wk[c].data(), bf16, kv_width},
                                                  {v.as<float>(), wv[c].data(), bf16, kv_width}};
                        gpu::norm_matmul(p, x.as<float>(), rms, xb.as<float>(), tokens, n_embd, s);
                    },
                    iterations, s),
                qkv_bytes, hbm);
        }
        {
            const std::size_t bytes = std::size_t{2} * q_width * n_embd;
            const auto wo = bf16_copies(bytes, copies_for(bytes), s);
            row("output projection + residual",
                time_us(
                    [&](int i) {
                        gpu::matmul_add(x.as<float>(), q.as<float>(),
                                        wo[static_cast<std::size_t>(i) % wo.size()].data(), bf16, xb.as<float>(),
                                        tokens, q_width, n_embd, s);
                    },
                    iterations, s),
                bytes, hbm);
        }
        using WT = runner::WeightType;
        {
            // A Q4_K_M layer's: q and k in Q4_K, v in Q6_K
            const std::size_t q_bytes = runner::matrix_bytes(WT::q4_k, q_width, n_embd),
                              k_bytes = runner::matrix_bytes(WT::q4_k, kv_width, n_embd),
                              v_bytes = runner::matrix_bytes(WT::q6_k, kv_width, n_embd);
            const std::size_t bytes = q_bytes + k_bytes + v_bytes;
            const auto wq = bf16_copies(q_bytes, copies_for(bytes), s);
            const auto wk = bf16_copies(k_bytes, wq.size(), s), wv = bf16_copies(v_bytes, wq.size(), s);
            row("rmsnorm + q/k Q4_K, v Q6_K",
                time_us(
                    [&](int i) {
                        const auto c = static_cast<std::size_t>(i) % wq.size();
                        const gpu::Product p[] = {{q.as<float>(), wq[c].data(), WT::q4_k, q_width},
                                                  {k.as<float>(), wk[c].data(), WT::q4_k, kv_width},
                                                  {v.as<float>(), wv[c].data(), WT::q6_k, kv_width}};
                        gpu::norm_matmul(p, x.as<float>(), rms, xb.as<float>(), tokens, n_embd, s);
                    },
                    iterations, s),
                bytes, hbm);
        }
        const std::pair<WT, const char*> formats[] = {{bf16, ""},           {WT::q8, ", 8bit"},   {WT::q4, ", 4bit"},
                                                      {WT::q8_0, ", Q8_0"}, {WT::q4_0, ", Q4_0"}, {WT::q4_k, ", Q4_K"},
                                                      {WT::q5_k, ", Q5_K"}, {WT::q6_k, ", Q6_K"}};
        for (const auto& [type, bits] : formats) {
            // down's [n_embd, n_ff] takes as many bytes as gate's [n_ff, n_embd]; a ggml block's scale is the
            // f16 0x3b80 like every other pair of bytes here
            const std::size_t bytes = runner::matrix_bytes(type, n_ff, n_embd);
            const auto wg = bf16_copies(bytes, copies_for(2 * bytes), s), wu = bf16_copies(bytes, wg.size(), s);
            row((std::string("rmsnorm + gate/up + SwiGLU") + bits).c_str(),
                time_us(
                    [&](int i) {
                        const auto c = static_cast<std::size_t>(i) % wg.size();
                        gpu::norm_matmul_swiglu(gate.as<float>(), up.as<float>(), xb.as<float>(), x.as<float>(), rms,
                                                wg[c].data(), wu[c].data(), type, tokens, n_embd, n_ff, s);
                    },
                    iterations, s),
                2 * bytes, hbm);
            const auto wd = bf16_copies(bytes, copies_for(bytes), s);
            row((std::string("down projection + residual") + bits).c_str(),
                time_us(
                    [&](int i) {
                        gpu::matmul_add(x.as<float>(), gate.as<float>(),
                                        wd[static_cast<std::size_t>(i) % wd.size()].data(), type, up.as<float>(),
                                        tokens, n_ff, n_embd, s);
                    },
                    iterations, s),
                bytes, hbm);
        }
        {
            const std::size_t bytes = std::size_t{2} * n_embd * n_vocab;
            const auto head = bf16_copies(bytes, 1, s);
            row("rmsnorm + output head",
                time_us(
                    [&](int) {
                        const gpu::Product p[] = {{logits.as<float>(), head[0].data(), bf16, n_vocab}};
                        gpu::norm_matmul(p, x.as<float>(), rms, xb.as<float>(), tokens, n_embd, s);
                    },
                    iterations, s),
                bytes, hbm);
        }
        std::vector<float> inv_freq(head_dim / 2);
        for (std::size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = 1.f / std::pow(500000.f, 2.f * static_cast<float>(i) / head_dim);
        gpu::DeviceBuffer freq(inv_freq.size() * 4), position(4);
        const auto scratch = gpu::DeviceBuffer::zeroed(gpu::attention_scratch_bytes(1, n_head, head_dim, 32768), s);
        gpu::copy_to_device(freq.data(), inv_freq.data(), inv_freq.size() * 4, s);
        for (const int n_ctx : {64, 1024, 4096, 32768}) {
            const std::size_t cache_bytes = std::size_t{2} * n_ctx * kv_width;
            const auto kc = bf16_copies(cache_bytes, copies_for(2 * cache_bytes), s),
                       vc = bf16_copies(cache_bytes, kc.size(), s);
            const int last = n_ctx - 1;
            gpu::copy_to_device(position.data(), &last, 4, s);
            // one token's, as a decode step runs it: RoPE and the cache writes inside attention's launch
            const std::string name = "rope + cache write + attention " + std::to_string(n_ctx);
            const gpu::RopeFirst rope{k.as<float>(), v.as<float>(), freq.as<float>(), runner::RopePairs::half};
            row(name.c_str(),
                time_us(
                    [&](int i) {
                        const auto c = static_cast<std::size_t>(i) % kc.size();
                        gpu::attention(xb.as<float>(), q.as<float>(), {kc[c].data(), vc[c].data()}, runner::KvType::f16,
                                       1, position.as<int>(), n_head, n_head_kv, head_dim, n_ctx, scratch.as<float>(),
                                       s, nullptr, &rope);
                    },
                    iterations, s),
                2 * cache_bytes, hbm);
        }
    } catch (const gpu::Error& e) {
        std::fprintf(stderr, "bench_decode_kernels: %s\n", e.what());
        return 1;
    }
    return 0;
}
