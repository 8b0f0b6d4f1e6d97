// The forward pass on a GPU under a strict VRAM budget. Each layer is either resident (uploaded once)
// or streamed: kept in pinned host memory (or, beyond the RAM budget, read from its file into a
// pinned staging buffer each pass) and copied into one of a ring of device slots on a copy stream
// of its own, while the compute stream works on the layer before it (events, no host syncs).
// A prompt goes through each layer once for all its tokens, in micro-batches that share the layer's
// weights, so a streamed layer crosses the link once per forward pass, not once per micro-batch.
// Decode steps split each pinned streamed layer between the GPU and the CPU (gpu_host_max_tokens
// below).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "runner/backend/gpu/backend.h"
#include "runner/engine/language_model.h"
#include "runner/model/model_weights.h"
#include "runner/model/weight_source.h"
#include "runner/offload/layer_slab.h"

namespace runner {

// What the VRAM budget holds, decided before anything is allocated.
struct GpuPlan {
    std::vector<bool> resident;                   // [n_layer]: in VRAM for good; the others stream through the ring
    int ring_slots = 0;                           // 0 when every layer is resident
    int max_batch = 0;                            // tokens per micro-batch
    Compression compression = Compression::none;  // of the projection matrices, resident and streamed
    std::size_t fixed_bytes = 0;                  // KV cache, activations, LM head, ring slots
    std::size_t resident_bytes = 0;               // resident layers
    std::size_t streamed_bytes = 0;               // crosses host->device on every forward pass
    std::vector<bool> pinned;                     // [n_layer]: a streamed layer held in pinned RAM; the
                                                  // other streamed layers are read from disk every pass
    std::size_t pinned_bytes = 0;                 // host RAM the pinned layers (and staging) take
    std::size_t disk_bytes = 0;                   // read from the model's files on every forward pass
    std::filesystem::path cache;                  // `prepare`'s layer cache for this compression, if used
    gpu::KvType kv_type = gpu::KvType::f16;
    int host_share = -1;      // asked for: percent of a split layer's MLP rows the host computes; -1 lets
                              // load() measure and decide, 0 none
    unsigned threads = 0;     // host threads for those rows; 0: all
    std::vector<bool> split;  // [n_layer]: streamed layers decoded by the GPU and the host at once (see
                              // GpuTransformer), decided by load(); empty until then
    int host_rows = 0;        // of each split layer's MLP, decided by load()
    std::size_t total_bytes() const { return fixed_bytes + resident_bytes; }
};

// What the GPU engine is asked for.
struct GpuOptions {
    int n_ctx = 0;
    int max_batch = 512;                          // tokens per micro-batch
    std::size_t vram_budget = 0;                  // 0: no limit
    std::size_t ram_budget = 0;                   // pinned host memory for streamed layers; 0: no limit
    Compression compression = Compression::none;  // of the projection matrices
    std::filesystem::path cache;                  // a complete `prepare` cache for `compression`, if there is one
    gpu::KvType kv_type = gpu::KvType::f16;
    int host_share = -1;   // percent of each pinned streamed layer's MLP rows the host computes
                           // while decoding: -1 measures both paths at load and splits so that they finish
                           // together; 0 none
    unsigned threads = 0;  // host threads for them; 0: all
};

// Layers go resident in order while they fit beside the fixed part; the rest stream through two
// slots, pinned in RAM while the RAM budget lasts, the rest from disk. Compressed layers come from
// the cache when given, else they are compressed at load and must then fit in RAM. An error says
// what did not fit.
common::Result<GpuPlan> plan_gpu(const ModelWeights& w, const ModelConfig& c, const GpuOptions& options);

struct GpuStats {
    std::size_t passes = 0;
    std::size_t bytes_copied = 0;  // weights host->device that passes used, summed over them
    std::size_t host_bytes = 0;    // weights the host computed with, summed over passes
    double host_wait_s = 0;        // split layers: the host waiting for the GPU's MLP input, summed over passes
    double host_mlp_s = 0;         // and computing its rows from it
    double copy_gbs = 0;           // measured by load() when it decided the split, both at once: pinned bytes
    double host_gbs = 0;           // over the link, and an MLP computed on the host in weight bytes per second
};

// Forward passes of at most this many tokens (decoding) split each split layer between the GPU and the
// host, so that the host's memory bandwidth and the link both carry weights at once, all the time: the
// GPU runs the layer's attention and the first rows of its MLP, the host the other rows from pinned RAM
// (the MLP is a sum over its rows), while the copy stream brings the GPU's part of the next layers into
// the ring. Only that part crosses the link. Longer passes (prompts) run every layer on the GPU.
constexpr int gpu_host_max_tokens = 4;

class GpuTransformer : public LanguageModel {
  public:
    // Allocates what the plan needs on the device (so a budget that does not hold fails here, at
    // once); load() then uploads and pins the weights. Errors (a GPU call) as Results.
    static common::Result<std::unique_ptr<GpuTransformer>> create(const WeightSource& source, ModelWeights weights,
                                                                  int n_ctx, GpuPlan plan);
    ~GpuTransformer() override;

    const ModelConfig& config() const override { return config_; }
    int n_ctx() const override { return n_ctx_; }
    common::Result<bool> load(const ProgressFn& progress) override;
    common::Result<std::span<const float>> forward(std::span<const std::int32_t> tokens, int n_past) override;

    const GpuPlan& plan() const { return plan_; }
    const GpuStats& stats() const { return stats_; }

  private:
    struct Impl;
    struct SplitRates {
        double copy, host;  // bytes per second over the link, and of an MLP computed on the host
    };
    std::optional<common::Error> whole_slab(std::byte* dst, std::size_t layer, const LayerLayout& layout);
    common::Result<SplitRates> time_split(const std::vector<int>& candidates);
    std::optional<common::Error> choose_split();
    void settle() noexcept;
    void forward_on_gpu(int layer, const std::byte* base, int n, bool host_mlp);
    void mlp_on_host(int layer, int n);
    GpuTransformer(const ModelConfig& config, int n_ctx, GpuPlan plan, std::unique_ptr<Impl> impl);

    ModelConfig config_;
    int n_ctx_;
    GpuPlan plan_;
    GpuStats stats_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace runner
