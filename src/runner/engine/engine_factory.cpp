#include "runner/engine/engine_factory.h"

#include <algorithm>
#include <fstream>
#include <thread>

#include "runner/engine/byte_size.h"
#include "runner/engine/transformer.h"
#include "runner/offload/layer_cache.h"
#ifdef OAR_HAVE_GPU
#include "runner/backend/gpu/backend.h"
#include "runner/engine/gpu_transformer.h"
#include "runner/selftest/first_load.h"
#include "runner/selftest/gpu_checks.h"
#endif

namespace runner {

namespace {

#ifdef OAR_HAVE_GPU
// VRAM left to the rest of the system (display, other programs) when no budget is given.
constexpr std::uint64_t vram_reserve = 512ull << 20;

// MemAvailable from /proc/meminfo less 4 GiB; 0 (no limit) when it cannot be read.
std::uint64_t available_ram_for_pinning() {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    std::string unit;
    while (meminfo >> key >> kib >> unit) {
        if (key != "MemAvailable:") continue;
        const std::uint64_t bytes = kib * 1024, reserve = 4ull << 30;
        return bytes > reserve ? bytes - reserve : 1;
    }
    return 0;
}

// What the load line says of decode steps' graphs.
std::string graphs_said(int graph_layers, int n_layer) {
    if (graph_layers == 0) return "";
    if (graph_layers == n_layer) return ", decode steps replayed as graphs";
    return ", decode steps' first " + std::to_string(graph_layers) + " layers replayed as graphs";
}
#endif

Engine cpu_engine(const WeightSource& source, ModelWeights weights, int n_ctx, const EngineOptions& o) {
    auto plan = plan_layers(weights, o.ram_budget);
    Engine e;
    e.streamed_bytes = plan.streamed_bytes;
    const unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
    e.description = "CPU, " + std::to_string(threads) + " threads, " + format_size(plan.resident_bytes) +
                    " in memory, " + format_size(plan.streamed_bytes) + " streamed from disk";
    if (o.compression != Compression::none)
        e.description +=
            " (" + std::string(compression_name(o.compression)) + " compression applies to the GPU engine only)";
    e.model = std::make_unique<Transformer>(source, std::move(weights), n_ctx, o.threads, std::move(plan));
    return e;
}

}  // namespace

common::Result<int> gpu_index(const Device& device) {
    if (device.kind == Device::Kind::cpu) return -1;
#ifndef OAR_HAVE_GPU
    if (device.kind == Device::Kind::automatic) return -1;
    return common::make_error(device.named_as + ": this ollama-airllm was built without a GPU backend; use cpu");
#else
    const int count = gpu::device_count();
    if (device.kind == Device::Kind::automatic) return count == 0 ? -1 : 0;
    if (device.index < count) return device.index;
    return common::make_error(device.named_as + ": " +
                              (count == 0 ? std::string("no GPU is visible (check the driver, and ROCR_VISIBLE_DEVICES "
                                                        "or CUDA_VISIBLE_DEVICES)")
                                          : "there are only " + std::to_string(count) + " GPUs") +
                              "; use cpu to run on the CPU");
#endif
}

common::Result<Engine> make_engine(const WeightSource& source, ModelWeights weights, int n_ctx,
                                   const EngineOptions& o) {
    const auto chosen = gpu_index(o.device);
    if (!chosen) return chosen.error();
#ifndef OAR_HAVE_GPU
    return cpu_engine(source, std::move(weights), n_ctx, o);  // gpu_index names no GPU in this build
#else
    if (*chosen < 0) return cpu_engine(source, std::move(weights), n_ctx, o);
    const int index = *chosen;
    try {
        gpu::use_device(index);
        const auto info = gpu::device_info();
        const auto checked = selftest::check_at_first_load(
            selftest::kernel_checks_dir(default_cache_root()),
            {info.uuid, info.pci, info.name + ", " + info.arch + ", " + info.runtime + ", " + gpu::Blas::library(),
             info.name + " (GPU " + std::to_string(index) + ")"},
            selftest::check_gpu_kernels);
        if (!checked) return checked.error();
        gpu::set_blas_checked(checked->blas_failure.empty());
        std::uint64_t budget = 0;
        if (o.vram_budget)
            budget = *o.vram_budget;
        else
            budget = info.free_bytes > vram_reserve ? info.free_bytes - vram_reserve : 0;
        if (budget > info.free_bytes)
            return common::make_error("a VRAM budget of " + format_size(budget) + " is more than the " +
                                      format_size(info.free_bytes) + " free on " + info.name);
        // Streamed layers are pinned in RAM up to --ram-budget (default: what is available now, less
        // a reserve for the rest of the system); beyond it they are read from disk on every pass.
        const std::uint64_t ram_budget = o.ram_budget ? o.ram_budget : available_ram_for_pinning();
        // `ollama-airllm prepare`'s cache, when it holds this model with this compression.
        std::filesystem::path cache;
        if (o.compression != Compression::none) {
            const auto dir = cache_dir(default_cache_root(), weights, o.compression);
            if (cache_complete(dir, weights, o.compression)) cache = dir;
        }
        GpuOptions gpu_options;
        gpu_options.n_ctx = n_ctx;
        gpu_options.max_batch = o.max_batch;
        gpu_options.vram_budget = budget;
        gpu_options.ram_budget = ram_budget;
        gpu_options.compression = o.compression;
        gpu_options.cache = cache;
        gpu_options.kv_type = o.kv_type;
        if (o.kv_near_tokens) gpu_options.kv_near_tokens = *o.kv_near_tokens;
        gpu_options.host_share = o.host_share;
        gpu_options.threads = o.threads;
        gpu_options.graphs = o.gpu_graphs;
        auto plan = plan_gpu(weights, source.config(), gpu_options, gpu_kernel_needs());
        if (!plan) return plan.error();
        auto model = GpuTransformer::create(source, std::move(weights), n_ctx, std::move(plan).value());
        if (!model) return model.error();
        const GpuPlan& p = (*model)->plan();
        Engine e;
        e.device_bytes = p.total_bytes();
        e.streamed_bytes = p.streamed_bytes;
        const auto streamed = std::count(p.resident.begin(), p.resident.end(), false);
        e.description =
            info.name + " (GPU " + std::to_string(index) + "), " + format_size(p.total_bytes()) + " of a " +
            format_size(budget) + " budget, " + (o.kv_type == KvType::f32 ? "f32" : "f16") + " KV cache" +
            (p.kv_host_bytes > 0
                 ? " (" + format_size(p.kv_host_bytes) + " of it in host memory: each layer's positions from " +
                       std::to_string(*std::min_element(p.kv_near_rows.begin(), p.kv_near_rows.end())) +
                       " on, or all of them for the last layers)"
                 : std::string()) +
            ", " + std::to_string(streamed) + " of " + std::to_string(p.resident.size()) + " layers streamed (" +
            format_size(p.streamed_bytes) + " per pass, " + format_size(p.pinned_bytes) + " pinned in RAM, " +
            format_size(p.disk_bytes) + " from disk" +
            (o.compression != Compression::none ? std::string(", ") + compression_name(o.compression) + " compression" +
                                                      (cache.empty() ? "" : " from the layer cache")
                                                : std::string()) +
            ")" + graphs_said((*model)->graph_layers(), static_cast<int>(p.resident.size())) + ", kernels checked" +
            (checked->remembered ? " at an earlier load" : "") +
            (checked->blas_failure.empty() ? std::string()
                                           : "; BLAS off, our own kernels run the prompts: " + checked->blas_failure);
        e.model = std::move(model).value();
        return e;
    } catch (const gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    }
#endif
}

}  // namespace runner
