// Decode speed of the CPU engine against its physical bound: every generated token reads all layer
// weights and the output head once, so tokens/s cannot beat (memory read bandwidth / weight bytes per
// token). Then a 256-token prompt against the host's peak multiply-add rate: every prompt token costs
// two flops per layer weight. The model is a random-weight Llama with Llama 3.2 1B's layer shapes (32k
// vocabulary), written once by this program into a cache folder.
//
// usage: bench_cpu_decode [MODEL_DIR] [TOKENS]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "host_flops.h"
#include "random_model.h"
#include "runner/backend/cpu/simd.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/engine/generate.h"
#include "runner/engine/transformer.h"
#include "runner/model/hf_folder.h"
#include "runner/selftest/host_read.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    const fs::path dir = argc > 1 ? fs::path(argv[1]) : bench::default_model_dir();
    const int tokens = argc > 2 ? std::atoi(argv[2]) : 24;
    bench::ensure_random_model(dir);
    auto source = runner::open_hf_folder(dir);
    if (!source) {
        std::fprintf(stderr, "bench_cpu_decode: %s\n", source.error().message.c_str());
        return 1;
    }
    auto weights = runner::bind_weights(**source);
    if (!weights) {
        std::fprintf(stderr, "bench_cpu_decode: %s\n", weights.error().message.c_str());
        return 1;
    }
    std::size_t bytes_per_token = weights->output->bytes + weights->output_norm->bytes;
    double layer_weights = 0;  // elements
    for (const auto& l : weights->layers) {
        bytes_per_token += l.bytes();
        for (const runner::TensorView* t : runner::layer_tensors(l))
            if (t) layer_weights += static_cast<double>(t->numel());
    }

    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    runner::cpu::ThreadPool pool(threads);
    // Measured before and after the decode, the better of the two: a virtual machine's memory bus can
    // change pace within a minute, and a bound measured in a slow moment would be no bound.
    const std::vector<std::byte> buffer(std::size_t{1} << 30, std::byte{1});
    double bandwidth = runner::selftest::best_read(pool, buffer).gbs;

    runner::Transformer model(**source, std::move(weights).value(), 512, threads);
    std::vector<std::int32_t> prompt = {1, 450, 4996, 17354, 1701, 29916, 432, 17204};
    runner::SamplingParams params;
    params.temperature = 0;
    runner::Sampler warm_sampler(params);
    // A first run pulls the weights into the page cache; the measured run then reads them from RAM.
    runner::KvSequence warm(model);
    (void)runner::generate(warm, prompt, 2, warm_sampler, {}, nullptr);
    runner::Transformer timed(**source, std::move(runner::bind_weights(**source)).value(), 512, threads);
    runner::Sampler sampler(params);
    runner::KvSequence sequence(timed);
    const auto result = runner::generate(sequence, prompt, tokens, sampler, {}, nullptr);
    if (!result) {
        std::fprintf(stderr, "bench_cpu_decode: %s\n", result.error().message.c_str());
        return 1;
    }
    bandwidth = std::max(bandwidth, runner::selftest::best_read(pool, buffer).gbs);

    constexpr int long_prompt = 256;
    std::vector<std::int32_t> long_ids;
    for (int i = 0; i < long_prompt; ++i) long_ids.push_back(100 + i);
    runner::Transformer prompted(**source, std::move(runner::bind_weights(**source)).value(), 512, threads);
    runner::Sampler prompt_sampler(params);
    runner::KvSequence prompted_sequence(prompted);
    const auto prompt_result = runner::generate(prompted_sequence, long_ids, 1, prompt_sampler, {}, nullptr);
    if (!prompt_result) {
        std::fprintf(stderr, "bench_cpu_decode: %s\n", prompt_result.error().message.c_str());
        return 1;
    }
    const double peak = bench::peak_f32_gflops(pool);
    const double prompt_tps = long_prompt / prompt_result->prompt_seconds;
    const double prompt_bound_tps = peak * 1e9 / (2 * layer_weights);
    const double decode_tps = static_cast<double>(result->ids.size() - 1) / result->decode_seconds;
    const double bound_tps = bandwidth * 1e9 / static_cast<double>(bytes_per_token);
    std::printf("\nCPU decode, random Llama 1B-shape model (bf16), %u threads, %s kernels\n\n", threads,
                runner::cpu::using_avx2() ? "AVX2+FMA" : "portable");
    std::printf("%-40s %14s\n", "weight bytes per token",
                (std::to_string(bytes_per_token / (1 << 20)) + " MiB").c_str());
    std::printf("%-40s %14.2f\n", "measured read bandwidth (GB/s)", bandwidth);
    std::printf("%-40s %14.2f\n", "bound: bandwidth / bytes (tokens/s)", bound_tps);
    std::printf("%-40s %14.2f\n", "achieved decode (tokens/s)", decode_tps);
    std::printf("%-40s %13.0f%%\n", "achieved / bound", 100.0 * decode_tps / bound_tps);
    std::printf("%-40s %14.2f\n", "prompt (8 tokens, tokens/s)",
                static_cast<double>(prompt.size()) / result->prompt_seconds);
    std::printf("%-40s %14.1f\n", "peak f32 multiply-adds, widest (GFLOP/s)", peak);
    std::printf("%-40s %14.2f\n", "bound: peak / 2 flops per weight (tok/s)", prompt_bound_tps);
    std::printf("%-40s %14.2f\n", "achieved prompt (256 tokens, tokens/s)", prompt_tps);
    std::printf("%-40s %13.0f%%\n", "achieved / bound", 100.0 * prompt_tps / prompt_bound_tps);
    return 0;
}
