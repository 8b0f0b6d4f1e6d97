// A decode step's sampling on the host: one token from a vocabulary's logits with the settings Ollama sends
// (its defaults: temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1 over the last 64), greedy, and the
// truncations on their own, over Llama 3's and Qwen2's vocabulary sizes. Logits: a peaked distribution (one
// token 15 above a normal background of sigma 2: p about 0.8, as a confident model's) and a flat one (normal, sigma 3).
// The bound: reading the logits once at the host's single-thread RAM read rate, measured in the run. A GPU decode step
// of an 8B model takes 3-10 ms; sampling is meant to stay a small part of it.
//
//   bench_sampling [--samples N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "ollama_sampling.h"
#include "runner/engine/sampling.h"
#include "runner/selftest/host_rates.h"

namespace {

struct Setting {
    const char* name;
    runner::SamplingParams params;
};

// Ollama's defaults with some of them changed.
runner::SamplingParams ollama_but(float temperature, int top_k, float top_p, float repeat_penalty) {
    runner::SamplingParams p = bench::ollama_default_sampling();
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.repeat_penalty = repeat_penalty;
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    int samples = 200;
    if (argc == 3 && std::string(argv[1]) == "--samples") {
        samples = std::max(1, std::atoi(argv[2]));
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: bench_sampling [--samples N]\n");
        return 2;
    }
    const double read_gbs = runner::selftest::host_read_gbps(1);
    std::printf("host RAM read, 1 thread: %.1f GB/s\n\n", read_gbs);
    const Setting settings[] = {
        {"greedy", ollama_but(0, 40, 0.9f, 1.1f)},
        {"Ollama's defaults", bench::ollama_default_sampling()},
        {"top_k off, top_p 0.9", ollama_but(0.8f, 0, 0.9f, 1.1f)},
        {"temperature only", ollama_but(0.8f, 0, 1.0f, 1.0f)},
    };
    std::printf("| vocabulary | logits | setting | ms a token | bound (ms) |\n|---|---|---|---|---|\n");
    for (const std::size_t vocab : {std::size_t{128256}, std::size_t{151936}}) {
        for (const bool peaked : {true, false}) {
            std::mt19937 rng(3);
            std::normal_distribution<float> normal(0.0f, peaked ? 2.0f : 3.0f);
            std::vector<float> logits(vocab);
            for (auto& l : logits) l = normal(rng);
            if (peaked) logits[vocab / 3] += 15;
            std::vector<std::int32_t> history(2000);
            for (auto& h : history) h = static_cast<std::int32_t>(rng() % vocab);
            const double bound_ms = static_cast<double>(vocab * sizeof(float)) / (read_gbs * 1e9) * 1e3;
            for (const auto& s : settings) {
                runner::Sampler sampler(s.params);
                std::int64_t sum = 0;
                const auto start = std::chrono::steady_clock::now();
                for (int i = 0; i < samples; ++i) sum += sampler.sample(logits, history);
                const double ms =
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
                    samples;
                std::printf("| %zu | %s | %s | %.3f | %.3f |\n", vocab, peaked ? "peaked" : "flat", s.name, ms,
                            bound_ms);
                if (sum < 0) return 1;  // keeps the samples observable
            }
        }
    }
    return 0;
}
