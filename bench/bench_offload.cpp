// Prompt and decode on the GPU under a VRAM budget, with layers that do not fit streamed from pinned
// host memory through the ring. For each budget and prompt length: prompt tokens/s, time to first
// token, decode s/token after the prompt, bytes over the host->device link per forward pass, VRAM
// allocated, each beside its bound. The bounds use bandwidths measured here: pinned host->device
// copies and device memory reads; prompt compute is bounded by the GPU's dense rate in --peak-tflops
// (default: H100/H200 SXM, 989 TFLOP/s BF16 on tensor cores where the build has a BLAS, else 67 f32).
// --reference FILE prints other systems' rows (bench/offload_reference.tsv: llama.cpp, accelerate and
// AirLLM on an H100 host) after ours.
//
// usage: bench_offload [--model DIR|FILE.gguf] [--gguf 8b|70b] [--budgets 4,8,0] [--prompts 32,4096] [--decode N]
// [--ctx N]
//                      [--max-batch N] [--compression none,8bit,4bit] [--ram-budget GiB]
//                      [--kv-cache f16|f32] [--kv-near N] [--host-share P] [--graphs on|off] [--peak-tflops T]
//                      [--reference FILE]
// --host-share: percent of each streamed layer's MLP rows computed on the host while decoding (default
// -1: the engine measures and decides); the split layers' bound is then the rate the link and the host's
// RAM reads reach together, measured with both running at once.
// --ram-budget pins streamed layers up to that much RAM and reads the rest from the model file on
// every pass (dropping its pages after each read, so they come from the disk); 0 pins them all.
// --ctx: the KV cache's capacity (default: the longest prompt and the decode steps); Ollama asks for
// 32768. A cache that would take VRAM from layers keeps the positions past --kv-near (default the
// engine's, 8192; 0: the whole cache in VRAM first) in host memory, as does a cache whose near rows do not
// fit beside the ring for its last layers; the decode bound counts their reads over the link.
// --graphs: decode steps (their resident layers before the first streamed one) replayed as recorded graphs
//   (default: the backend's).
// Budgets are GiB, 0 meaning no limit. The model defaults to a random-weight one shaped like Llama 3.1 8B
// (about 16 GB of BF16 safetensors, written on first use); --gguf 8b or 70b writes and runs a random
// Q4_K_M-style GGUF of Llama 3.1 8B's or Llama 3.3 70B's shape instead (bench/random_gguf.h), the file
// llama.cpp's benchmarks can read too.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "disk_bandwidth.h"
#include "random_gguf.h"
#include "random_model.h"
#include "runner/backend/gpu/backend.h"
#include "runner/engine/gpu_transformer.h"
#include "runner/model/gguf_model.h"
#include "runner/model/hf_folder.h"
#include "runner/offload/layer_slab.h"
#include "runner/selftest/gpu_bandwidth.h"
#include "runner/selftest/host_read.h"
#include "weight_count.h"

namespace fs = std::filesystem;
namespace gpu = runner::gpu;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

std::vector<double> parse_list(const std::string& text) {
    std::vector<double> out;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');) out.push_back(std::stod(item));
    return out;
}

// Host RAM read GB/s alone (runner::selftest::best_read over 2 GiB), and then both rates while pinned host->device
// copies run at the same time (the best of three rounds, by their sum): the DMA and the cores share the
// memory bus, so what the two reach together, not their sum alone, bounds a decode step split between
// them. A bound is what the machine can reach, hence the best rounds.
struct HostRates {
    double alone = 0, with_copies = 0, copies_with_reads = 0;
};
HostRates host_read_gbs() {
    const std::vector<std::byte> data(std::size_t{2} << 30, std::byte{1});
    runner::cpu::ThreadPool pool(0);
    const auto best = runner::selftest::best_read(pool, data);
    HostRates r;
    r.alone = best.gbs;
    gpu::PinnedBuffer host(runner::selftest::copy_bytes);
    std::memset(host.data(), 1, runner::selftest::copy_bytes);
    gpu::DeviceBuffer device(runner::selftest::copy_bytes);
    gpu::Stream s;
    for (int round = 0; round < 3; ++round) {
        std::atomic<bool> reading = true;
        double reads = 0;
        std::thread reader([&] {
            double seconds_per_gb = 0;  // four passes' bytes over their time together
            for (int pass = 0; pass < 4; ++pass)
                seconds_per_gb += 1 / runner::selftest::read_pass_gbs(pool, data, best.pattern);
            reads = 4 / seconds_per_gb;
            reading = false;
        });
        double copied = 0;
        const auto t0 = clock_type::now();
        while (reading) {
            gpu::copy_to_device(device.data(), host.data(), runner::selftest::copy_bytes, s);
            s.synchronize();
            copied += static_cast<double>(runner::selftest::copy_bytes);
        }
        const double copy_s = seconds_since(t0);
        reader.join();
        const double copies = copied / copy_s / 1e9;
        if (reads + copies > r.with_copies + r.copies_with_reads) {
            r.with_copies = reads;
            r.copies_with_reads = copies;
        }
    }
    return r;
}

std::string gib(std::size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(bytes) / (1ull << 30));
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    fs::path model_dir;
    std::vector<double> budgets = {4, 8, 0}, prompts = {32, 4096};
    int decode_tokens = 8, max_batch = 1024;
    double peak_tflops = gpu::Blas::available() ? 989 : 67;
    fs::path reference;
    std::vector<runner::Compression> compressions = {runner::Compression::none};
    double ram_budget_gib = 0;
    auto kv_type = runner::KvType::f16;
    int host_share = -1;
    int ctx = 0;
    int kv_near = runner::gpu_kv_near_tokens;
    std::optional<bool> graphs;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--model")
            model_dir = v;
        else if (a == "--gguf" && (v == "8b" || v == "70b")) {
            const auto shape = v == "8b" ? bench::GgufShape::llama_8b : bench::GgufShape::llama_70b;
            model_dir = bench::default_gguf_path(shape);
            bench::ensure_random_gguf(model_dir, shape);
        } else if (a == "--budgets")
            budgets = parse_list(v);
        else if (a == "--prompts")
            prompts = parse_list(v);
        else if (a == "--decode")
            decode_tokens = std::stoi(v);
        else if (a == "--ctx")
            ctx = std::stoi(v);
        else if (a == "--kv-near")
            kv_near = std::stoi(v);
        else if (a == "--max-batch")
            max_batch = std::stoi(v);
        else if (a == "--peak-tflops")
            peak_tflops = std::stod(v);
        else if (a == "--reference")
            reference = v;
        else if (a == "--ram-budget")
            ram_budget_gib = std::stod(v);
        else if (a == "--host-share")
            host_share = std::stoi(v);
        else if (a == "--graphs" && (v == "on" || v == "off"))
            graphs = v == "on";
        else if (a == "--kv-cache" && (v == "f16" || v == "f32"))
            kv_type = v == "f16" ? runner::KvType::f16 : runner::KvType::f32;
        else if (a == "--compression") {
            compressions.clear();
            std::stringstream in(v);
            for (std::string item; std::getline(in, item, ',');) {
                runner::Compression c;
                if (!runner::parse_compression(item, c)) {
                    std::fprintf(stderr, "bench_offload: --compression '%s' is not none, 8bit or 4bit\n", item.c_str());
                    return 2;
                }
                compressions.push_back(c);
            }
        } else {
            std::fprintf(stderr, "bench_offload: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    if (gpu::device_count() == 0) {
        std::puts("bench_offload: no GPU here");
        return 1;
    }
    if (model_dir.empty()) {
        model_dir = bench::default_model_dir(bench::ModelShape::llama_8b);
        bench::ensure_random_model(model_dir, bench::ModelShape::llama_8b);
    }
    const auto device = gpu::device_info();
    const double link = runner::selftest::pinned_h2d_gbs(), hbm = runner::selftest::device_copy_gbs();
    const bool gguf = fs::is_regular_file(model_dir);
    const fs::path model_file = gguf ? model_dir : model_dir / "model.safetensors";
    const double disk =
        ram_budget_gib > 0 ? std::max(bench::cold_read_gbs(model_file, 1), bench::cold_read_gbs(model_file, 4)) : 0;
    if (disk > 0) std::printf("model file read cold: %.2f GB/s\n", disk);
    const auto host = host_read_gbs();
    const double both_links = host.with_copies + host.copies_with_reads;
    std::printf("device: %s, %s GiB free of %s; pinned host->device %.1f GB/s; device copy %.0f GB/s\n",
                device.name.c_str(), gib(device.free_bytes).c_str(), gib(device.total_bytes).c_str(), link, hbm);
    std::printf(
        "host RAM read (%u threads): %.1f GB/s alone; %.1f GB/s while host->device copies run at %.1f GB/s "
        "(both together %.1f GB/s)\n",
        std::thread::hardware_concurrency(), host.alone, host.with_copies, host.copies_with_reads, both_links);

    int max_prompt = 0;
    for (const double p : prompts) max_prompt = std::max(max_prompt, static_cast<int>(p));
    const int n_ctx = std::max(ctx, max_prompt + decode_tokens + 1);
    std::printf("model: %s, context %d, micro-batch %d, %s KV cache%s\n\n", model_dir.c_str(), n_ctx, max_batch,
                kv_type == runner::KvType::f16 ? "f16" : "f32",
                gpu::attention_on_tensor_cores(kv_type, 128) ? ", prompt attention on tensor cores" : "");
    std::printf("%-6s %-8s %-7s %8s %8s %12s %10s %9s %12s %10s %9s %10s %9s %8s %8s %6s\n", "comp", "budget", "prompt",
                "load s", "VRAM GiB", "prompt tok/s", "bound", "achieved", "decode s/tok", "bound", "achieved",
                "GB/pass", "disk GB", "resident", "streamed", "host%");
    for (const auto compression : compressions)
        for (const double budget_gib : budgets) {
            for (const double prompt_len : prompts) {
                auto source = gguf ? runner::open_gguf_model(model_dir) : runner::open_hf_folder(model_dir);
                if (!source) {
                    std::fprintf(stderr, "bench_offload: %s\n", source.error().message.c_str());
                    return 1;
                }
                auto weights = runner::bind_weights(**source);
                if (!weights) {
                    std::fprintf(stderr, "bench_offload: %s\n", weights.error().message.c_str());
                    return 1;
                }
                const auto& c = (*source)->config();
                const double n_weights = bench::weights_per_token(*weights);
                const auto budget = static_cast<std::size_t>(budget_gib * (1ull << 30));
                runner::GpuOptions options;
                options.n_ctx = n_ctx;
                options.max_batch = max_batch;
                options.vram_budget = budget;
                options.ram_budget = static_cast<std::size_t>(ram_budget_gib * (1ull << 30));
                options.compression = compression;
                options.kv_type = kv_type;
                options.kv_near_tokens = kv_near;
                options.host_share = host_share;
                options.graphs = graphs;
                auto plan = runner::plan_gpu(*weights, c, options, runner::gpu_kernel_needs());
                if (!plan) {
                    std::printf("%-6s %-8s %-7d %s\n", runner::compression_name(compression),
                                budget_gib == 0 ? "none" : (gib(budget) + "G").c_str(), static_cast<int>(prompt_len),
                                plan.error().message.c_str());
                    continue;
                }
                // Device memory each decode step reads: the resident layers and the output head.
                const std::size_t streamed = plan->streamed_bytes,
                                  resident = plan->resident_bytes + weights->output->bytes;
                const std::size_t disk_bytes = plan->disk_bytes;
                const std::size_t kv_host = plan->kv_host_bytes;
                const int near_rows = *std::min_element(plan->kv_near_rows.begin(), plan->kv_near_rows.end());
                // Host-memory KV rows: attention reads those in use over the link, halfway through the decode
                // steps on average.
                double kv_host_read = 0;
                const double row_kv = 2.0 * static_cast<double>(runner::kv_row_bytes(c, kv_type));
                for (const int near : plan->kv_near_rows)
                    kv_host_read += std::max(0.0, prompt_len + decode_tokens / 2.0 - near) * row_kv;
                const int n_streamed =
                    static_cast<int>(std::count(plan->resident.begin(), plan->resident.end(), false));
                std::vector<std::size_t> layer_bytes;
                for (const auto& l : weights->layers) layer_bytes.push_back(runner::layout_of(l, compression).bytes);
                const std::size_t free_before = gpu::device_info().free_bytes;
                const auto load_start = clock_type::now();
                auto model = runner::GpuTransformer::create(**source, std::move(weights).value(), n_ctx,
                                                            std::move(plan).value());
                if (!model) {
                    std::fprintf(stderr, "bench_offload: %s\n", model.error().message.c_str());
                    return 1;
                }
                if (auto loaded = (*model)->load([](std::size_t, std::size_t) { return true; }); !loaded) {
                    std::fprintf(stderr, "bench_offload: %s\n", loaded.error().message.c_str());
                    return 1;
                }
                const double load_s = seconds_since(load_start);
                const std::size_t used = free_before - gpu::device_info().free_bytes;

                std::vector<std::int32_t> tokens(static_cast<std::size_t>(prompt_len));
                for (std::size_t i = 0; i < tokens.size(); ++i)
                    tokens[i] = static_cast<std::int32_t>((i * 7919) % 32000);
                const auto t0 = clock_type::now();
                auto logits = (*model)->forward(tokens, 0);
                const double prompt_s = seconds_since(t0);
                if (!logits) {
                    std::fprintf(stderr, "bench_offload: %s\n", logits.error().message.c_str());
                    return 1;
                }
                const auto before = (*model)->stats();
                const auto t1 = clock_type::now();
                for (int d = 0; d < decode_tokens; ++d) {
                    const std::int32_t next[] = {static_cast<std::int32_t>(d + 1)};
                    if (!(*model)->forward(next, static_cast<int>(prompt_len) + d)) return 1;
                }
                const double decode_s = seconds_since(t1) / decode_tokens;
                const auto& after = (*model)->stats();

                // Bounds: weights over the link (streamed) and from device memory (resident), and for the
                // prompt also the arithmetic, 2 flops per weight per token.
                // Disk reads overlap the link's copies: the slower of the two bounds the streamed part.
                const double from_disk = disk > 0 ? static_cast<double>(disk_bytes) / (disk * 1e9) : 0;
                // Split layers go over the link and through the host's RAM reads at once: their bound is
                // what both reach together, measured above; the other streamed layers have the link alone.
                const auto& chosen = (*model)->split();
                const int host_rows = chosen.host_rows;
                const int host_pct = static_cast<int>(std::lround(100.0 * host_rows / c.n_ff));
                std::size_t split_bytes = 0;
                for (std::size_t i = 0; i < chosen.split.size(); ++i)
                    if (chosen.split[i] && host_rows > 0) split_bytes += layer_bytes[i];
                // The table's bound puts the resident layers' HBM time after the streamed part, in a decode
                // step's order. The link copies ahead while they run (decide_split counts on it), so the bound
                // with the link, the host's RAM and HBM all busy at once, the slowest of them, follows the row.
                const double streamed_s =
                    std::max(static_cast<double>(split_bytes) / (both_links * 1e9) +
                                 (static_cast<double>(streamed - split_bytes) + kv_host_read) / (link * 1e9),
                             from_disk);
                const double resident_s = static_cast<double>(resident) / (hbm * 1e9);
                const double decode_bound = streamed_s + resident_s;
                const double overlapped_bound = std::max(streamed_s, resident_s);
                const double flops = 2.0 * n_weights * prompt_len;
                const double prompt_bound_s =
                    std::max({static_cast<double>(streamed) / (link * 1e9), from_disk, flops / (peak_tflops * 1e12)});
                std::printf(
                    "%-6s %-8s %-7d %8.1f %8s %12.0f %10.0f %8.0f%% %12.5f %10.5f %8.0f%% %10.2f %9.2f %8d %8d %6d\n",
                    runner::compression_name(compression), budget_gib == 0 ? "none" : (gib(budget) + "G").c_str(),
                    static_cast<int>(prompt_len), load_s, gib(used).c_str(), prompt_len / prompt_s,
                    prompt_len / prompt_bound_s, 100 * prompt_bound_s / prompt_s, decode_s, decode_bound,
                    100 * decode_bound / decode_s, static_cast<double>(streamed) / 1e9,
                    static_cast<double>(disk_bytes) / 1e9, c.n_layer - n_streamed, n_streamed, host_pct);
                if (streamed > 0)
                    std::printf(
                        "       decode bound with the link, the host's RAM and HBM all busy at once: %.5f "
                        "s/token (%.0f%% of it)\n",
                        overlapped_bound, 100 * overlapped_bound / decode_s);
                if (kv_host > 0)
                    std::printf(
                        "       KV cache: %.2f GiB of it in pinned host memory (at least the positions from %d on)\n",
                        static_cast<double>(kv_host) / (1ull << 30), near_rows);
                if (host_rows > 0)
                    std::printf(
                        "       load measured, both at once, %.1f GB/s over the link and a layer's MLP at %.1f GB/s "
                        "on the host, and the host kept from its rows %.1f ms a step and %.0f us a split layer; a "
                        "decode step moved %.2f GB over the link and %.2f GB from host RAM, its host computed for "
                        "%.1f ms and waited %.1f ms for the GPU\n",
                        chosen.rates.copy / 1e9, chosen.rates.host / 1e9, chosen.rates.gpu_alone * 1e3,
                        chosen.rates.split_wait * 1e6,
                        static_cast<double>(after.bytes_copied - before.bytes_copied) / decode_tokens / 1e9,
                        static_cast<double>(after.host_bytes - before.host_bytes) / decode_tokens / 1e9,
                        (after.host_mlp_s - before.host_mlp_s) / decode_tokens * 1e3,
                        (after.host_wait_s - before.host_wait_s) / decode_tokens * 1e3);
                if (after.graph_steps > before.graph_steps || !after.graph_error.empty())
                    std::printf(
                        "       decode steps replayed as graphs (their first %d layers): %zu of %d, recorded "
                        "%zu times (in the time)%s%s\n",
                        (*model)->graph_layers(), after.graph_steps - before.graph_steps, decode_tokens,
                        after.graph_records - before.graph_records,
                        after.graph_error.empty() ? "" : "; recording failed: ", after.graph_error.c_str());
                std::fflush(stdout);
            }
        }
    if (!reference.empty()) {
        std::ifstream in(reference);
        if (!in) {
            std::fprintf(stderr, "bench_offload: cannot read %s\n", reference.c_str());
            return 1;
        }
        std::printf("\nfor comparison (%s):\n", reference.c_str());
        for (std::string line; std::getline(in, line);) {
            if (line.empty() || line[0] == '#') continue;
            std::string cells;
            std::stringstream row(line);
            for (std::string cell; std::getline(row, cell, '\t');) cells += cell + " | ";
            std::printf("  %s\n", cells.c_str());
        }
    }
    return 0;
}
