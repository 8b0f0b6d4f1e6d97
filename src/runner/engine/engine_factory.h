// Which engine runs a model, from typed options: the CPU engine under a RAM budget, or the GPU engine
// under a VRAM budget. The CLI resolves flags and the service's variables into these once
// (cli/engine_flags); the factory parses nothing. It plans and allocates, so a budget that does not
// hold fails here with the setting to change; the weights are placed by Engine::model->load().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "runner/engine/language_model.h"
#include "runner/model/model_weights.h"
#include "runner/model/weight_format.h"
#include "runner/model/weight_source.h"
#include "runner/offload/quantize.h"

namespace runner {

struct Device {
    enum class Kind { automatic, cpu, gpu };
    Kind kind = Kind::automatic;  // automatic: the first GPU when this build has a GPU backend and sees one
    int index = 0;                // of the GPU
    std::string named_as;         // what the user wrote, for messages: "--device cuda:1", "AIRLLM_DEVICE=hip:0"
};

struct EngineOptions {
    Device device;
    std::optional<std::uint64_t> vram_budget;     // empty: free VRAM minus a reserve
    std::uint64_t ram_budget = 0;                 // CPU: 0 keeps every layer in memory; GPU: 0 pins up to
                                                  // available RAM less a reserve
    unsigned threads = 0;                         // CPU threads; 0 for all
    int max_batch = 512;                          // GPU: prompt tokens per micro-batch
    Compression compression = Compression::none;  // GPU: of the projection matrices
    KvType kv_type = KvType::f16;                 // GPU
    std::optional<int> kv_near_tokens;            // GPU: positions of a split KV cache in VRAM; empty: the default
    int host_share = -1;                          // GPU: percent of streamed MLP rows the CPU computes; -1 auto
    std::optional<bool> gpu_graphs;               // GPU: decode steps as recorded graphs; empty: the backend's default
};

struct Engine {
    std::unique_ptr<LanguageModel> model;
    std::string description;           // "CPU, 16 threads, ..." or "NVIDIA H200 (GPU 0), ..."
    std::uint64_t device_bytes = 0;    // VRAM it holds (what the runner reports to Ollama)
    std::uint64_t streamed_bytes = 0;  // weights read or copied again on every forward pass
};

// The GPU `device` names on this machine, or -1 for the CPU (cpu, or automatic where this build has no GPU
// backend or sees no GPU); an error naming what is missing when it names a GPU that is not there.
common::Result<int> gpu_index(const Device& device);

// `source` must outlive the engine.
common::Result<Engine> make_engine(const WeightSource& source, ModelWeights weights, int n_ctx,
                                   const EngineOptions& options);

}  // namespace runner
