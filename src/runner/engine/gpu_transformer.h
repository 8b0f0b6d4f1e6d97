// The forward pass on a GPU under a strict VRAM budget, as offload/gpu_plan decided it: resident layers
// are uploaded once; streamed layers come through a LayerRing (engine/gpu_layer_ring.h) from pinned RAM
// or from disk while the compute stream works on the layer before. A prompt goes through each layer once
// for all its tokens, in micro-batches that share the layer's weights, so a streamed layer crosses the
// link once per forward pass, not once per micro-batch. Decode steps split each split layer's MLP
// between the GPU and the host (gpu_host_max_tokens in offload/gpu_plan.h). The KV cache is in VRAM, or
// where the plan splits it, each layer's rows past its near ones in pinned host memory; prompts longer
// than a pass (gpu_max_pass_tokens) run in several passes. Where the plan asks for graphs, a decode step
// replays its resident layers before the first streamed one (with every layer resident, the whole step)
// as one recorded graph.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runner/backend/gpu/backend.h"
#include "runner/engine/language_model.h"
#include "runner/model/model_weights.h"
#include "runner/model/weight_source.h"
#include "runner/offload/gpu_plan.h"
#include "runner/offload/layer_slab.h"

namespace runner {

// What this build's GPU kernels need beside the weights, for plan_gpu.
KernelNeeds gpu_kernel_needs();

struct GpuStats {
    std::size_t passes = 0;
    std::size_t bytes_copied = 0;   // weights host->device that passes used, summed over them
    std::size_t host_bytes = 0;     // weights the host computed with, summed over passes
    double host_wait_s = 0;         // split layers: the host waiting for the GPU's MLP input, summed over passes
    double host_mlp_s = 0;          // and computing its rows from it
    std::size_t graph_steps = 0;    // decode steps whose first layers (or all) replayed from a recorded graph
    std::size_t graph_records = 0;  // and the recordings they replayed
    std::string graph_error;        // why recording failed, after which steps run launch by launch
};

class GpuTransformer : public LanguageModel {
  public:
    // Allocates what the plan needs on the device (so a budget that does not hold fails here, at
    // once); load() then uploads the resident layers, decides the split (timing them), and pins or
    // leaves in their files the others. Errors (a GPU call) as Results.
    static common::Result<std::unique_ptr<GpuTransformer>> create(const WeightSource& source, ModelWeights weights,
                                                                  int n_ctx, GpuPlan plan);
    ~GpuTransformer() override;

    const ModelConfig& config() const override { return config_; }
    int n_ctx() const override { return n_ctx_; }
    common::Result<bool> load(const ProgressFn& progress) override;
    std::string load_summary() const override { return describe_split(split_, config_.n_ff); }
    common::Result<std::span<const float>> forward(std::span<const std::int32_t> tokens, int n_past) override;

    const GpuPlan& plan() const { return plan_; }
    // Decided by load(); no layer splits until then.
    const SplitDecision& split() const { return split_; }
    const GpuStats& stats() const { return stats_; }
    // How many of a decode step's first layers replay from a recorded graph: 0 unless asked for (or the
    // backend's default) and no recording has failed; then the resident layers before the first streamed
    // one, every layer when all are resident.
    int graph_layers() const;

  private:
    struct Impl;
    struct LayerPass;
    GpuTransformer(const ModelConfig& config, int n_ctx, GpuPlan plan, std::unique_ptr<Impl> impl);

    std::optional<common::Error> whole_slab(std::byte* dst, std::size_t layer, const LayerLayout& layout) const;
    std::optional<common::Error> choose_split();
    std::pair<double, double> time_without_host();
    std::optional<common::Error> load_layer(std::size_t layer);
    std::optional<common::Error> run_pass(std::span<const std::int32_t> tokens, int n_past);
    int begin_pass(std::span<const std::int32_t> tokens, int n_past);
    bool replay_first_layers(int n_past);
    void embed_on_host(std::span<const std::int32_t> tokens, int n_past);
    void upload_embedded(int n);
    void forward_on_gpu(int layer, const std::byte* base, int n, int n_past, bool host_mlp);
    void copy_kv_rows(const gpu::KvRows& dst, const gpu::KvRows& src, int from, int to);
    void mlp_on_host(int layer, int n);
    void enqueue_logits(int n);
    void read_logits();
    void settle() noexcept;

    ModelConfig config_;
    int n_ctx_;
    const GpuPlan plan_;
    SplitDecision split_;
    GpuStats stats_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace runner
