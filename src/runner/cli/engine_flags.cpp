#include "runner/cli/engine_flags.h"

#include <cstdlib>

#include "runner/cli/model_options.h"

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
  --kv-near-tokens N        GPU engine: where the whole KV cache in VRAM would push layers out, keep
                            each layer's first N positions in VRAM and the rest in pinned RAM; 0 keeps
                            the whole cache in VRAM first (default: $AIRLLM_KV_NEAR_TOKENS, else 8192)
  --host-share P            GPU engine: while decoding, the CPU computes P percent of the MLP rows of
                            each layer that streams from pinned RAM and the GPU the rest, so RAM
                            and the link both carry weights; auto times both at load and splits so
                            that they finish together; 0: none (default: $AIRLLM_HOST_SHARE, else auto)
  --gpu-graphs on|off       GPU engine: replay each decode step of a model wholly in VRAM (where
                            layers stream, its resident layers before the first streamed one) as
                            one recorded graph (default: $AIRLLM_GPU_GRAPHS, else on with CUDA, off
                            with ROCm)
)";

namespace {

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

// "f16" or "f32".
std::optional<runner::KvType> parse_kv_type(const std::string& v) {
    if (v == "f16") return runner::KvType::f16;
    if (v == "f32") return runner::KvType::f32;
    return std::nullopt;
}

// "auto" (-1) or a percentage.
std::optional<int> parse_host_share(const std::string& v) {
    int n = 0;
    if (v == "auto") return -1;
    if (!parse_int(v, n) || n < 0 || n > 100) return std::nullopt;
    return n;
}

// "on"/"1" or "off"/"0".
std::optional<bool> parse_switch(const std::string& v) {
    if (v == "on" || v == "1") return true;
    if (v == "off" || v == "0") return false;
    return std::nullopt;
}

// "cpu", "auto", "cuda", "cuda:N", "hip", "hip:N"; existing /etc/default/ollama files say cuda:0 on ROCm.
// `named_as` is how messages quote it.
common::Result<runner::Device> parse_device(const std::string& spec, const std::string& where,
                                            const std::string& named_as) {
    using Kind = runner::Device::Kind;
    if (spec == "cpu") return runner::Device{Kind::cpu, 0, named_as};
    if (spec == "auto") return runner::Device{Kind::automatic, 0, named_as};
    for (const std::string prefix : {"cuda", "hip", "gpu"}) {
        if (spec == prefix) return runner::Device{Kind::gpu, 0, named_as};
        int index = 0;
        if (spec.rfind(prefix + ":", 0) == 0 && parse_int(spec.substr(prefix.size() + 1), index) && index >= 0)
            return runner::Device{Kind::gpu, index, named_as};
    }
    return common::make_error(where + " '" + spec + "' is not a device: use cpu, cuda:N, hip:N or auto");
}

}  // namespace

std::optional<common::Result<bool>> parse_engine_option(const std::vector<std::string>& args, std::size_t& i,
                                                        EngineFlags& o) {
    const auto& a = args[i];
    if (a != "--device" && a != "--vram-budget" && a != "--ram-budget" && a != "--threads" && a != "--max-batch" &&
        a != "--compression" && a != "--kv-cache" && a != "--kv-near-tokens" && a != "--host-share" &&
        a != "--gpu-graphs")
        return std::nullopt;
    if (i + 1 >= args.size()) return common::Result<bool>(common::make_error(a + " needs a value"));
    const std::string& v = args[++i];
    if (a == "--device") {
        auto device = parse_device(v, "--device", "--device " + v);
        if (!device) return common::Result<bool>(device.error());
        o.device = std::move(device).value();
    } else if (a == "--compression") {
        runner::Compression c;
        if (!runner::parse_compression(v, c))
            return common::Result<bool>(common::make_error("--compression '" + v + "' is not none, 8bit or 4bit"));
        o.compression = c;
    } else if (a == "--kv-cache") {
        o.kv_type = parse_kv_type(v);
        if (!o.kv_type) return common::Result<bool>(common::make_error("--kv-cache '" + v + "' is not f16 or f32"));
    } else if (a == "--gpu-graphs") {
        o.gpu_graphs = parse_switch(v);
        if (!o.gpu_graphs)
            return common::Result<bool>(common::make_error("--gpu-graphs '" + v + "' is not on or off (1 or 0)"));
    } else if (a == "--host-share") {
        o.host_share = parse_host_share(v);
        if (!o.host_share)
            return common::Result<bool>(
                common::make_error("--host-share '" + v + "' is not a percentage (0 to 100) or auto"));
    } else if (a == "--vram-budget" || a == "--ram-budget") {
        const auto size = parse_size(v);
        if (!size) return common::Result<bool>(common::make_error(a + " '" + v + "' is not a size such as 8GiB"));
        if (a == "--vram-budget")
            o.vram_budget = *size;
        else
            o.ram_budget = *size;
    } else {
        int n = 0;
        if (!parse_int(v, n) || n < (a == "--max-batch" ? 1 : 0))
            return common::Result<bool>(common::make_error(a + " '" + v + "' is not a count"));
        if (a == "--threads")
            o.threads = static_cast<unsigned>(n);
        else if (a == "--kv-near-tokens")
            o.kv_near_tokens = n;
        else
            o.max_batch = n;
    }
    return common::Result<bool>(true);
}

common::Result<runner::EngineOptions> resolve_engine_options(const EngineFlags& flags) {
    runner::EngineOptions o;
    if (flags.device) {
        o.device = *flags.device;
    } else {
        const std::string spec = env_or("AIRLLM_DEVICE", "auto");
        auto device = parse_device(spec, "AIRLLM_DEVICE", "AIRLLM_DEVICE=" + spec);
        if (!device) return device.error();
        o.device = std::move(device).value();
    }
    if (flags.vram_budget) {
        o.vram_budget = flags.vram_budget;
    } else if (const std::string env = env_or("AIRLLM_VRAM_BUDGET", "auto"); env != "auto") {
        o.vram_budget = parse_size(env);
        if (!o.vram_budget) return common::make_error("AIRLLM_VRAM_BUDGET '" + env + "' is not a size such as 8GiB");
    }
    if (flags.compression) {
        o.compression = *flags.compression;
    } else if (const std::string env = env_or("AIRLLM_COMPRESSION", "none");
               !runner::parse_compression(env, o.compression)) {
        return common::make_error("AIRLLM_COMPRESSION '" + env + "' is not none, 8bit or 4bit");
    }
    if (flags.kv_type) {
        o.kv_type = *flags.kv_type;
    } else {
        const std::string env = env_or("AIRLLM_KV_CACHE", "f16");
        const auto kv_type = parse_kv_type(env);
        if (!kv_type) return common::make_error("AIRLLM_KV_CACHE '" + env + "' is not f16 or f32");
        o.kv_type = *kv_type;
    }
    o.ram_budget = flags.ram_budget;
    o.threads = flags.threads;
    o.max_batch = flags.max_batch;
    if (flags.host_share) {
        o.host_share = *flags.host_share;
    } else {
        const std::string env = env_or("AIRLLM_HOST_SHARE", "auto");
        const auto share = parse_host_share(env);
        if (!share) return common::make_error("AIRLLM_HOST_SHARE '" + env + "' is not a percentage (0 to 100) or auto");
        o.host_share = *share;
    }
    if (flags.kv_near_tokens) {
        o.kv_near_tokens = flags.kv_near_tokens;
    } else if (const std::string env = env_or("AIRLLM_KV_NEAR_TOKENS", ""); !env.empty()) {
        int n = 0;
        if (!parse_int(env, n) || n < 0)
            return common::make_error("AIRLLM_KV_NEAR_TOKENS '" + env + "' is not a count of positions");
        o.kv_near_tokens = n;
    }
    if (flags.gpu_graphs) {
        o.gpu_graphs = flags.gpu_graphs;
    } else if (const std::string env = env_or("AIRLLM_GPU_GRAPHS", ""); !env.empty()) {
        o.gpu_graphs = parse_switch(env);
        if (!o.gpu_graphs) return common::make_error("AIRLLM_GPU_GRAPHS '" + env + "' is not 1 or 0 (on or off)");
    }
    return o;
}

}  // namespace runner_cli
