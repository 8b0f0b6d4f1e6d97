// The engine options the commands share (--device, --vram-budget, --ram-budget, --threads, --max-batch,
// --compression, --kv-cache, --kv-near-tokens, --host-share, --gpu-graphs), each checked as it is read, and
// resolved once against AIRLLM_DEVICE, AIRLLM_VRAM_BUDGET, AIRLLM_COMPRESSION, AIRLLM_KV_CACHE,
// AIRLLM_KV_NEAR_TOKENS and AIRLLM_GPU_GRAPHS (what the service's
// /etc/default/ollama sets) into the engine's typed options.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/engine/engine_factory.h"

namespace runner_cli {

// What the command line said; empty: the variable, else the default.
struct EngineFlags {
    std::optional<runner::Device> device;
    std::optional<std::uint64_t> vram_budget;
    std::uint64_t ram_budget = 0;
    unsigned threads = 0;
    int max_batch = 512;
    std::optional<runner::Compression> compression;
    std::optional<runner::KvType> kv_type;
    std::optional<int> kv_near_tokens;
    std::optional<int> host_share;
    std::optional<bool> gpu_graphs;
};

// The usage lines of the options below, for each command's --help.
extern const char* const engine_options_usage;

// Takes one of the options at args[i] (advancing i past its value). nullopt: not one of them; an error:
// one of them with a bad value.
std::optional<common::Result<bool>> parse_engine_option(const std::vector<std::string>& args, std::size_t& i,
                                                        EngineFlags& flags);

// The flags over the variables over the defaults; an error names the variable and its bad value.
common::Result<runner::EngineOptions> resolve_engine_options(const EngineFlags& flags);

}  // namespace runner_cli
