// A coding agent's session replayed through the engine: a system prompt with tool definitions (8,000
// tokens), then turns that each add a message (300 tokens) to the whole conversation so far and take a
// 100-token answer, as opencode sends them. Each turn's time to first token and decode speed, with the
// prompt cache (one KvSequence across turns, as the runner keeps it) and without (every turn from
// position 0, as before the cache), beside their bounds:
//   time to first token: the tokens run, at the device's peak multiply-add rate (on the CPU the 8-bit
//     integer one for quantized projections), or the streamed weights crossing the link once,
//     whichever is slower;
//   decode: every weight read once per token, streamed ones over the link and from host RAM together
//     at their measured rates, resident ones from device memory (CPU: all from RAM).
// The engine is built from the same flags as `ollama-airllm generate` (--device, --vram-budget,
// --compression, --kv-cache, ...). The model defaults to the random Llama-3.1-8B-shape one on a GPU and
// the 1B-shape one on the CPU (bench/random_model.h); --model also takes a GGUF file, and --gguf 8b or 70b
// writes and runs a random Q4_K_M-style one (bench/random_gguf.h).
//
// --sampling ollama samples each answer token with Ollama's defaults (temperature 0.8, top_k 40, top_p 0.9,
// repeat_penalty 1.1 over 64) instead of greedily, so that the decode figures include what `ollama run` pays.
//
// usage: bench_conversation [--model DIR|FILE.gguf] [--gguf 8b|70b] [--ctx N] [--system N] [--turns N] [--turn-tokens
// N]
//                           [--answer N] [--peak-tflops T] [--sampling greedy|ollama] [engine flags]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "host_flops.h"
#include "ollama_sampling.h"
#include "random_gguf.h"
#include "random_model.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/cli/engine_flags.h"
#include "runner/engine/engine_factory.h"
#include "runner/engine/generate.h"
#include "runner/model/gguf_model.h"
#include "runner/model/hf_folder.h"
#include "runner/offload/layer_slab.h"
#include "runner/selftest/host_read.h"
#include "weight_count.h"
#ifdef OAR_HAVE_GPU
#include "runner/selftest/gpu_bandwidth.h"
#endif

namespace fs = std::filesystem;

namespace {

struct Turn {
    std::size_t prompt = 0, reused = 0;
    double ttft = 0, ttft_bound = 0, decode = 0;
};

// Device rates the bounds are made of.
struct Rates {
    double flops = 0;  // peak multiply-add rate, flop/s
    double link = 0;   // pinned host to device, bytes/s (GPU)
    double host = 0;   // host RAM read, bytes/s
    double hbm = 0;    // device memory, bytes/s (GPU)
};

// The session's tokens: a system prompt, then per turn a message and, once answered, the answer.
std::vector<std::int32_t> tokens(int n, int seed, int n_vocab) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    const int range = std::min(n_vocab, 32000);
    for (int i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = (seed + 7919 * i) % range;
    return ids;
}

// Runs the session; `cached`: one KvSequence for all turns, else a fresh one per turn.
std::vector<Turn> replay(runner::LanguageModel& model, bool cached, int system, int turns, int turn_tokens, int answer,
                         double n_weights, double streamed_bytes, const Rates& rates,
                         const runner::SamplingParams& sampling) {
    const int n_vocab = model.config().n_vocab;
    auto conversation = tokens(system, 13, n_vocab);
    runner::KvSequence kept(model);
    std::vector<Turn> out;
    for (int t = 0; t < turns; ++t) {
        const auto message = tokens(turn_tokens, 101 + t, n_vocab);
        conversation.insert(conversation.end(), message.begin(), message.end());
        runner::KvSequence fresh(model);
        auto& sequence = cached ? kept : fresh;
        runner::Sampler sampler(sampling);
        // No end-of-sequence ids: a random model's answer runs to its full length, as a real one's may.
        auto result = runner::generate(sequence, conversation, answer, sampler, {}, nullptr);
        if (!result) {
            std::fprintf(stderr, "bench_conversation: turn %d: %s\n", t + 1, result.error().message.c_str());
            std::exit(1);
        }
        Turn turn;
        turn.prompt = conversation.size();
        turn.reused = result->prompt_reused;
        turn.ttft = result->prompt_seconds;
        const double run = static_cast<double>(turn.prompt - turn.reused);
        turn.ttft_bound = std::max(2 * n_weights * run / rates.flops, rates.link > 0 ? streamed_bytes / rates.link : 0);
        turn.decode = result->decode_seconds / static_cast<double>(std::max<std::size_t>(result->ids.size() - 1, 1));
        out.push_back(turn);
        conversation.insert(conversation.end(), result->ids.begin(), result->ids.end());
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    fs::path model_dir;
    int n_ctx = 32768, system = 8000, turns = 6, turn_tokens = 300, answer = 100;
    double peak_tflops = 989;
    runner::SamplingParams sampling;  // greedy, no penalties: what the figures before --sampling measured
    sampling.temperature = 0;
    sampling.repeat_penalty = 1;
    runner_cli::EngineFlags flags;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (auto taken = runner_cli::parse_engine_option(args, i, flags)) {
            if (!taken->ok()) {
                std::fprintf(stderr, "bench_conversation: %s\n", taken->error().message.c_str());
                return 2;
            }
            continue;
        }
        const std::string& a = args[i];
        if (i + 1 >= args.size()) {
            std::fprintf(stderr, "bench_conversation: %s needs a value\n", a.c_str());
            return 2;
        }
        const std::string& v = args[++i];
        if (a == "--model")
            model_dir = v;
        else if (a == "--gguf" && (v == "8b" || v == "70b")) {
            const auto shape = v == "8b" ? bench::GgufShape::llama_8b : bench::GgufShape::llama_70b;
            model_dir = bench::default_gguf_path(shape);
            bench::ensure_random_gguf(model_dir, shape);
        } else if (a == "--ctx")
            n_ctx = std::stoi(v);
        else if (a == "--system")
            system = std::stoi(v);
        else if (a == "--turns")
            turns = std::stoi(v);
        else if (a == "--turn-tokens")
            turn_tokens = std::stoi(v);
        else if (a == "--answer")
            answer = std::stoi(v);
        else if (a == "--peak-tflops")
            peak_tflops = std::stod(v);
        else if (a == "--sampling" && (v == "greedy" || v == "ollama")) {
            if (v == "ollama") sampling = bench::ollama_default_sampling();
        } else {
            std::fprintf(stderr, "bench_conversation: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    auto options = runner_cli::resolve_engine_options(flags);
    if (!options) {
        std::fprintf(stderr, "bench_conversation: %s\n", options.error().message.c_str());
        return 2;
    }
    const bool on_cpu = options->device.kind == runner::Device::Kind::cpu;
    if (model_dir.empty()) {
        const auto shape = on_cpu ? bench::ModelShape::llama_1b : bench::ModelShape::llama_8b;
        model_dir = bench::default_model_dir(shape);
        bench::ensure_random_model(model_dir, shape);
    }
    auto source =
        fs::is_regular_file(model_dir) ? runner::open_gguf_model(model_dir) : runner::open_hf_folder(model_dir);
    if (!source) {
        std::fprintf(stderr, "bench_conversation: %s\n", source.error().message.c_str());
        return 1;
    }
    auto weights = runner::bind_weights(**source);
    if (!weights) {
        std::fprintf(stderr, "bench_conversation: %s\n", weights.error().message.c_str());
        return 1;
    }
    const double n_weights = bench::weights_per_token(*weights);
    // On the CPU, quantized projections (GGUF's blocks, compression) multiply on 8-bit integers.
    const bool int8_rows =
        options->compression != runner::Compression::none || runner::is_block_type(weights->layers.at(0).wq->dtype);
    double weight_bytes = static_cast<double>(weights->output->bytes);
    for (const auto& l : weights->layers)
        weight_bytes += static_cast<double>(runner::layout_of(l, options->compression).bytes);

    runner::cpu::ThreadPool pool(options->threads);
    Rates rates;
    {
        const std::vector<std::byte> buffer(std::size_t{1} << 30, std::byte{1});
        rates.host = runner::selftest::best_read(pool, buffer).gbs * 1e9;
    }
    auto engine = runner::make_engine(**source, std::move(weights).value(), n_ctx, *options);
    if (!engine) {
        std::fprintf(stderr, "bench_conversation: %s\n", engine.error().message.c_str());
        return 1;
    }
    const bool gpu = engine->device_bytes > 0;
#ifdef OAR_HAVE_GPU
    if (gpu) {
        rates.link = runner::selftest::pinned_h2d_gbs() * 1e9;
        rates.hbm = runner::selftest::device_copy_gbs() * 1e9;
    }
#endif
    rates.flops = gpu         ? peak_tflops * 1e12
                  : int8_rows ? bench::peak_int8_gops(pool) * 1e9
                              : bench::peak_f32_gflops(pool) * 1e9;
    if (auto loaded = engine->model->load([](std::size_t, std::size_t) { return true; }); !loaded) {
        std::fprintf(stderr, "bench_conversation: %s\n", loaded.error().message.c_str());
        return 1;
    }
    const double streamed = static_cast<double>(engine->streamed_bytes);
    const double decode_bound =
        gpu ? streamed / (rates.link + rates.host) + (weight_bytes - streamed) / rates.hbm : weight_bytes / rates.host;
    std::printf("model: %s, context %d; %s\n", model_dir.c_str(), n_ctx, engine->description.c_str());
    if (sampling.temperature > 0)
        std::printf("sampling: temperature %.2g, top_k %d, top_p %.2g, repeat_penalty %.2g over %d\n",
                    sampling.temperature, sampling.top_k, sampling.top_p, sampling.repeat_penalty,
                    sampling.penalty_last_n);
    else
        std::printf("sampling: greedy\n");
    std::printf("session: %d-token system prompt, %d turns of %d tokens, %d-token answers\n", system, turns,
                turn_tokens, answer);
    std::printf("rates: peak %.0f G%s/s, host RAM %.1f GB/s", rates.flops / 1e9,
                !gpu && int8_rows ? "OP (8-bit)" : "FLOP", rates.host / 1e9);
    if (gpu) std::printf(", link %.1f GB/s, device memory %.0f GB/s", rates.link / 1e9, rates.hbm / 1e9);
    std::printf("; decode bound %.4f s/token\n\n", decode_bound);

    std::printf("%-9s %4s %8s %8s %6s %10s %10s %9s %12s %9s\n", "cache", "turn", "prompt", "reused", "run", "TTFT s",
                "bound s", "of turn 1", "decode s/tok", "achieved");
    for (const bool cached : {true, false}) {
        const auto session =
            replay(*engine->model, cached, system, turns, turn_tokens, answer, n_weights, streamed, rates, sampling);
        for (std::size_t t = 0; t < session.size(); ++t) {
            const auto& turn = session[t];
            std::printf("%-9s %4zu %8zu %8zu %6zu %10.3f %10.3f %8.1f%% %12.4f %8.0f%%\n", cached ? "prefix" : "none",
                        t + 1, turn.prompt, turn.reused, turn.prompt - turn.reused, turn.ttft, turn.ttft_bound,
                        100 * turn.ttft / session.front().ttft, turn.decode, 100 * decode_bound / turn.decode);
        }
    }
    return 0;
}
