// Which engine runs a model: the CPU (with a RAM budget), or a GPU under a VRAM budget. From
// --device / --vram-budget, else AIRLLM_DEVICE / AIRLLM_VRAM_BUDGET (what the service's
// /etc/default/ollama sets), else the first GPU when this build has a GPU backend and sees one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/cli/model_options.h"
#include "runner/engine/language_model.h"

namespace runner_cli {

struct EngineOptions {
    std::string device;                        // cpu, cuda:N, hip:N, auto; empty: $AIRLLM_DEVICE, else auto
    std::optional<std::uint64_t> vram_budget;  // empty: $AIRLLM_VRAM_BUDGET, else free VRAM minus a reserve
    std::uint64_t ram_budget = 0;              // CPU engine: 0 keeps every layer in memory
    unsigned threads = 0;                      // CPU engine: 0 for all
    int max_batch = 512;                       // GPU engine: prompt tokens per micro-batch
    std::string compression;                   // GPU engine: none, 8bit, 4bit; empty: $AIRLLM_COMPRESSION, else none
    std::string kv_cache;                      // GPU engine: f16, f32; empty: $AIRLLM_KV_CACHE, else f16
    int host_share = -1;                       // GPU engine: percent of streamed MLP rows the CPU computes; -1 auto
};

// The usage lines of the options below, for each command's --help.
extern const char* const engine_options_usage;

// Takes --device, --vram-budget, --ram-budget, --threads, --max-batch, --compression, --kv-cache or --host-share
// at args[i]
// (advancing i past its value). nullopt: not one of them; an error: one of them with a bad value.
std::optional<common::Result<bool>> parse_engine_option(const std::vector<std::string>& args, std::size_t& i,
                                                        EngineOptions& options);

struct Engine {
    std::unique_ptr<runner::LanguageModel> model;
    std::string description;           // "CPU, 16 threads, ..." or "NVIDIA H200 (cuda:0), ..."
    std::uint64_t device_bytes = 0;    // VRAM it holds (what the runner reports to Ollama)
    std::uint64_t streamed_bytes = 0;  // weights read or copied again on every forward pass
};

// Plans and allocates; the weights are placed by Engine::model->load(). Errors name the setting to
// change (budget, device, context).
common::Result<Engine> make_engine(OpenModel& model, int n_ctx, const EngineOptions& options);

}  // namespace runner_cli
