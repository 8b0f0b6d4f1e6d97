#include "runner/cli/engine_options.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "runner/engine/transformer.h"
#include "runner/offload/layer_cache.h"
#include "runner/offload/quantize.h"
#ifdef OAR_HAVE_GPU
#include "runner/backend/gpu/backend.h"
#include "runner/engine/gpu_transformer.h"
#endif

namespace runner_cli {

const char* const engine_options_usage =
    R"(  --device D                cpu, cuda:N or hip:N (the same GPU N on either build), or auto: the first
                            GPU if there is one (default: $AIRLLM_DEVICE, else auto)
  --vram-budget SIZE        VRAM the GPU engine may use, weights, KV cache and buffers together; layers
                            that do not fit stream from RAM (default: $AIRLLM_VRAM_BUDGET, else free
                            VRAM minus 512 MiB)
  --ram-budget SIZE         weights kept in RAM: the CPU engine streams the rest from disk; the GPU engine
                            pins streamed layers up to SIZE (default: available RAM less 4 GiB) and
                            reads the rest from disk on every pass
  --threads N               CPU threads (default: all)
  --max-batch N             GPU engine: prompt tokens per micro-batch (default 512)
  --compression C           GPU engine: none, 8bit or 4bit block-quantized projections (fewer bytes to
                            stream, some quality lost); default: $AIRLLM_COMPRESSION, else none
  --kv-cache T              GPU engine: f16 (half the VRAM, tensor-core prompt attention) or f32 (exact)
                            key/value cache; default: $AIRLLM_KV_CACHE, else f16
  --host-share P            GPU engine: while decoding, the CPU computes P percent of the MLP rows of
                            each layer that streams from pinned RAM and the GPU the rest, so RAM
                            and the link both carry weights; auto (default) times both at load and
                            splits so that they finish together; 0: none
)";

namespace {

// VRAM left to the rest of the system (display, other programs) when no budget is given.
constexpr std::uint64_t vram_reserve = 512ull << 20;

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

bool is_kv_cache_type(const std::string& v) { return v == "f16" || v == "f32"; }

struct DeviceChoice {
    bool gpu = false;
    int index = 0;
};

// "cpu", "auto", "cuda", "cuda:N", "hip", "hip:N"; existing /etc/default/ollama files say cuda:0 on ROCm.
common::Result<DeviceChoice> parse_device(const std::string& spec, const std::string& where) {
    if (spec == "cpu") return DeviceChoice{};
    if (spec == "auto") return DeviceChoice{true, -1};
    for (const std::string prefix : {"cuda", "hip", "gpu"}) {
        if (spec == prefix) return DeviceChoice{true, 0};
        int index = 0;
        if (spec.rfind(prefix + ":", 0) == 0 && parse_int(spec.substr(prefix.size() + 1), index) && index >= 0)
            return DeviceChoice{true, index};
    }
    return common::make_error(where + " '" + spec + "' is not a device: use cpu, cuda:N, hip:N or auto");
}

#ifdef OAR_HAVE_GPU
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
#endif

Engine cpu_engine(OpenModel& m, int n_ctx, const EngineOptions& o, runner::Compression compression) {
    auto plan = runner::plan_layers(m.weights, o.ram_budget);
    Engine e;
    e.streamed_bytes = plan.streamed_bytes;
    const unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
    e.description = "CPU, " + std::to_string(threads) + " threads, " + format_size(plan.resident_bytes) +
                    " in memory, " + format_size(plan.streamed_bytes) + " streamed from disk";
    if (compression != runner::Compression::none)
        e.description +=
            " (" + std::string(runner::compression_name(compression)) + " compression applies to the GPU engine only)";
    e.model = std::make_unique<runner::Transformer>(*m.source, std::move(m.weights), n_ctx, o.threads, std::move(plan));
    return e;
}

}  // namespace

std::optional<common::Result<bool>> parse_engine_option(const std::vector<std::string>& args, std::size_t& i,
                                                        EngineOptions& o) {
    const auto& a = args[i];
    if (a != "--device" && a != "--vram-budget" && a != "--ram-budget" && a != "--threads" && a != "--max-batch" &&
        a != "--compression" && a != "--kv-cache" && a != "--host-share")
        return std::nullopt;
    if (i + 1 >= args.size()) return common::Result<bool>(common::make_error(a + " needs a value"));
    const std::string& v = args[++i];
    if (a == "--device") {
        if (auto d = parse_device(v, "--device"); !d) return common::Result<bool>(d.error());
        o.device = v;
    } else if (a == "--compression") {
        runner::Compression c;
        if (!runner::parse_compression(v, c))
            return common::Result<bool>(common::make_error("--compression '" + v + "' is not none, 8bit or 4bit"));
        o.compression = v;
    } else if (a == "--kv-cache") {
        if (!is_kv_cache_type(v))
            return common::Result<bool>(common::make_error("--kv-cache '" + v + "' is not f16 or f32"));
        o.kv_cache = v;
    } else if (a == "--host-share") {
        int n = 0;
        if (v != "auto" && (!parse_int(v, n) || n < 0 || n > 100))
            return common::Result<bool>(
                common::make_error("--host-share '" + v + "' is not a percentage (0 to 100) or auto"));
        o.host_share = v == "auto" ? -1 : n;
    } else if (a == "--vram-budget" || a == "--ram-budget") {
        const auto size = parse_size(v);
        if (!size) return common::Result<bool>(common::make_error(a + " '" + v + "' is not a size such as 8GiB"));
        if (a == "--vram-budget")
            o.vram_budget = *size;
        else
            o.ram_budget = *size;
    } else {
        int n = 0;
        if (!parse_int(v, n) || n < (a == "--threads" ? 0 : 1))
            return common::Result<bool>(common::make_error(a + " '" + v + "' is not a count"));
        if (a == "--threads")
            o.threads = static_cast<unsigned>(n);
        else
            o.max_batch = n;
    }
    return common::Result<bool>(true);
}

common::Result<Engine> make_engine(OpenModel& m, int n_ctx, const EngineOptions& o) {
    const bool from_env = o.device.empty();
    const std::string spec = from_env ? env_or("AIRLLM_DEVICE", "auto") : o.device;
    auto choice = parse_device(spec, from_env ? "AIRLLM_DEVICE" : "--device");
    if (!choice) return choice.error();
    const std::string compression_spec = o.compression.empty() ? env_or("AIRLLM_COMPRESSION", "none") : o.compression;
    runner::Compression compression;
    if (!runner::parse_compression(compression_spec, compression))
        return common::make_error("AIRLLM_COMPRESSION '" + compression_spec + "' is not none, 8bit or 4bit");
    const std::string kv_cache = o.kv_cache.empty() ? env_or("AIRLLM_KV_CACHE", "f16") : o.kv_cache;
    if (!is_kv_cache_type(kv_cache)) return common::make_error("AIRLLM_KV_CACHE '" + kv_cache + "' is not f16 or f32");
    if (!choice->gpu) return cpu_engine(m, n_ctx, o, compression);
#ifndef OAR_HAVE_GPU
    if (choice->index < 0) return cpu_engine(m, n_ctx, o, compression);
    return common::make_error((from_env ? "AIRLLM_DEVICE=" : "--device ") + spec +
                              ": this ollama-airllm was built without a GPU backend; use cpu");
#else
    const int count = runner::gpu::device_count();
    if (choice->index < 0) {
        if (count == 0) return cpu_engine(m, n_ctx, o, compression);
        choice->index = 0;
    }
    if (choice->index >= count)
        return common::make_error((from_env ? "AIRLLM_DEVICE=" : "--device ") + spec + ": " +
                                  (count == 0
                                       ? std::string("no GPU is visible (check the driver, and ROCR_VISIBLE_DEVICES "
                                                     "or CUDA_VISIBLE_DEVICES)")
                                       : "there are only " + std::to_string(count) + " GPUs") +
                                  "; use cpu to run on the CPU");
    try {
        runner::gpu::use_device(choice->index);
        const auto info = runner::gpu::device_info();
        std::uint64_t budget = 0;
        if (o.vram_budget) {
            budget = *o.vram_budget;
        } else if (const std::string env = env_or("AIRLLM_VRAM_BUDGET", "auto"); env != "auto") {
            const auto size = parse_size(env);
            if (!size) return common::make_error("AIRLLM_VRAM_BUDGET '" + env + "' is not a size such as 8GiB");
            budget = *size;
        } else {
            budget = info.free_bytes > vram_reserve ? info.free_bytes - vram_reserve : 0;
        }
        if (budget > info.free_bytes)
            return common::make_error("a VRAM budget of " + format_size(budget) + " is more than the " +
                                      format_size(info.free_bytes) + " free on " + info.name);
        // Streamed layers are pinned in RAM up to --ram-budget (default: what is available now, less
        // a reserve for the rest of the system); beyond it they are read from disk on every pass.
        const std::uint64_t ram_budget = o.ram_budget ? o.ram_budget : available_ram_for_pinning();
        // `ollama-airllm prepare`'s cache, when it holds this model with this compression.
        std::filesystem::path cache;
        if (compression != runner::Compression::none) {
            const auto dir = runner::cache_dir(runner::default_cache_root(), m.weights, compression);
            if (runner::cache_complete(dir, m.weights, compression)) cache = dir;
        }
        runner::GpuOptions gpu_options;
        gpu_options.n_ctx = n_ctx;
        gpu_options.max_batch = o.max_batch;
        gpu_options.vram_budget = budget;
        gpu_options.ram_budget = ram_budget;
        gpu_options.compression = compression;
        gpu_options.cache = cache;
        gpu_options.kv_type = kv_cache == "f32" ? runner::gpu::KvType::f32 : runner::gpu::KvType::f16;
        gpu_options.host_share = o.host_share;
        gpu_options.threads = o.threads;
        auto plan = runner::plan_gpu(m.weights, m.source->config(), gpu_options);
        if (!plan) return plan.error();
        Engine e;
        e.device_bytes = plan->total_bytes();
        e.streamed_bytes = plan->streamed_bytes;
        const auto streamed = std::count(plan->resident.begin(), plan->resident.end(), false);
        e.description = info.name + " (GPU " + std::to_string(choice->index) + "), " +
                        format_size(plan->total_bytes()) + " of a " + format_size(budget) + " budget, " + kv_cache +
                        " KV cache, " + std::to_string(streamed) + " of " + std::to_string(plan->resident.size()) +
                        " layers streamed (" + format_size(plan->streamed_bytes) + " per pass, " +
                        format_size(plan->pinned_bytes) + " pinned in RAM, " + format_size(plan->disk_bytes) +
                        " from disk" +
                        (compression != runner::Compression::none
                             ? std::string(", ") + runner::compression_name(compression) + " compression" +
                                   (cache.empty() ? "" : " from the layer cache")
                             : std::string()) +
                        ")";
        auto model = runner::GpuTransformer::create(*m.source, std::move(m.weights), n_ctx, std::move(plan).value());
        if (!model) return model.error();
        e.model = std::move(model).value();
        return e;
    } catch (const runner::gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    }
#endif
}

}  // namespace runner_cli
