// What a VRAM budget holds, decided before anything is allocated: which layers stay resident on the
// GPU and which stream through a ring of device slots, which streamed layers are pinned in RAM and
// which are read from disk on every pass, and, once the link's and the host's rates are known, which
// layers decode split between the GPU and the host. Pure arithmetic over shapes and budgets: no GPU is
// needed to plan, so CI tests it with tables of models, budgets and compressions.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "common/result.h"
#include "runner/model/model_config.h"
#include "runner/model/model_weights.h"
#include "runner/model/weight_format.h"
#include "runner/offload/quantize.h"

namespace runner {

// A long context's KV cache keeps this many positions of each layer in VRAM, and the rest in pinned
// host memory, where the whole cache would take VRAM from weights: each step reads every weight byte of
// a streamed layer, but only the positions in use of the cache, so a conversation's first positions
// earn their VRAM at once, a 32k context's last ones only once it is that long (docs/gpu-engine.md).
constexpr int gpu_kv_near_tokens = 8192;

// What the GPU engine is asked for.
struct GpuOptions {
    int n_ctx = 0;
    int max_batch = 512;                          // tokens per micro-batch
    std::size_t vram_budget = 0;                  // 0: no limit
    std::size_t ram_budget = 0;                   // pinned host memory for streamed layers; 0: no limit
    Compression compression = Compression::none;  // of the projection matrices
    std::filesystem::path cache;                  // a complete `prepare` cache for `compression`, if there is one
    KvType kv_type = KvType::f16;
    // Where the whole KV cache in VRAM would leave layers streaming: the positions of each layer's cache
    // kept in VRAM, the rest in pinned host memory; 0 keeps the whole cache in VRAM first.
    int kv_near_tokens = gpu_kv_near_tokens;
    int host_share = -1;   // percent of each pinned streamed layer's MLP rows the host computes
                           // while decoding: -1 measures both paths at load and splits so that they finish
                           // together; 0 none
    unsigned threads = 0;  // host threads for them; 0: all
    // Decode steps (their resident layers before the first streamed one) recorded once and replayed as one
    // launch (gpu::Graph); empty: the backend's default.
    std::optional<bool> graphs;
};

// What the GPU kernels need beside the weights, which only the backend knows: the engine passes
// gpu_kernel_needs() (engine/gpu_transformer.h), tests their own.
struct KernelNeeds {
    bool blas = false;  // products go through a BLAS, with 16-bit scratch for activations and widened weights
    // Split-key attention partials for a micro-batch of n_tokens; 0 when the kernel needs none.
    std::function<std::size_t(int n_tokens, int n_head, int head_dim, int n_ctx)> attention_scratch;
};

// The most tokens one forward pass carries through the layers: the residual stream holds them all, in
// VRAM and pinned, so a longer prompt runs in passes of this many (each streams the weights once). At
// 16,384 tokens a pass computes long enough to hide a layer's copy behind it, and Ollama's 32k or 262k
// contexts no longer size a residual stream of gigabytes.
constexpr int gpu_max_pass_tokens = 16384;

struct GpuPlan {
    int n_ctx = 0;                                // what the KV cache is sized for
    int max_pass = 0;                             // tokens per forward pass: min(n_ctx, gpu_max_pass_tokens)
    std::vector<bool> resident;                   // [n_layer]: in VRAM for good; the others stream through the ring
    int ring_slots = 0;                           // 0 when every layer is resident
    std::size_t slot_bytes = 0;                   // each ring slot: the largest streamed layer in either layout
    int max_batch = 0;                            // tokens per micro-batch
    Compression compression = Compression::none;  // of the projection matrices, resident and streamed
    std::size_t fixed_bytes = 0;                  // KV cache in VRAM, activations, LM head, ring slots
    std::size_t resident_bytes = 0;               // resident layers
    std::size_t streamed_bytes = 0;               // crosses host->device on every forward pass
    std::vector<bool> pinned;                     // [n_layer]: a streamed layer held in pinned RAM; the
                                                  // other streamed layers are read from disk every pass
    std::size_t pinned_bytes = 0;                 // host RAM the pinned layers (and staging) take
    std::size_t disk_bytes = 0;                   // read from the model's files on every forward pass
    std::filesystem::path cache;                  // `prepare`'s layer cache for this compression, if used
    KvType kv_type = KvType::f16;
    // [n_layer]: the rows (positions) of the layer's keys and values in VRAM; the rest live in pinned host
    // memory, which decode's kernels write and read over the link. n_ctx, unless the whole cache would
    // take VRAM from weights (then kv_near_tokens), or the budget holds no more of it beside the ring
    // (then 0 for the last layers).
    std::vector<int> kv_near_rows;
    std::size_t kv_host_bytes = 0;  // pinned host memory the other rows take, before the RAM budget's layers
    // VRAM into which a pass of several tokens copies a split layer's cache in use, attends there and
    // copies its new rows back: one layer's keys and values, when any layer's cache is split.
    std::size_t kv_stage_bytes = 0;
    int host_share = -1;         // as asked (GpuOptions)
    unsigned threads = 0;        // as asked
    std::optional<bool> graphs;  // as asked
    bool blas = false;           // as KernelNeeds said
    // Prompt products widen quantized matrices (compressed, or a GGUF's blocks) to bf16 for the BLAS, in
    // VRAM scratch of the largest projection.
    bool widens_weights = false;
    std::size_t attention_scratch_bytes = 0;
    std::size_t total_bytes() const { return fixed_bytes + resident_bytes; }
};

// Everything in VRAM when it fits. Otherwise the KV cache's first kv_near_tokens positions of every
// layer go to VRAM first (attention reads them at HBM speed), its other positions to pinned host memory;
// layers then go resident in order while they fit beside it; the rest stream through two slots, pinned
// in RAM while the RAM budget lasts, the rest from disk. A context whose near rows do not fit beside the
// slots keeps the last layers' whole caches in pinned host memory instead of failing the load. A decode
// step's attention reads the host's positions in use over the link, a longer pass copies the layer's
// cache into a staging layer in VRAM first. Compressed layers come from the cache when given, else they
// are compressed at load and must then fit in RAM. An error says what did not fit.
common::Result<GpuPlan> plan_gpu(const ModelWeights& w, const ModelConfig& c, const GpuOptions& options,
                                 const KernelNeeds& kernels);

// The most split-key attention scratch any micro-batch of up to max_batch tokens needs.
std::size_t attention_scratch_bytes(const ModelConfig& c, int n_ctx, int max_batch, const KernelNeeds& kernels);
// The KV cache of every layer, keys and values.
std::size_t kv_cache_bytes(const ModelConfig& c, int n_ctx, KvType type);
// One position of one layer's keys (or of its values).
std::size_t kv_row_bytes(const ModelConfig& c, KvType type);
// The largest projection, in weights: what the BLAS widens a quantized matrix into.
std::size_t largest_projection(const ModelConfig& c);
// Whether any layer holds ggml's blocks (a GGUF model's Q4_K ...).
bool has_ggml_blocks(const ModelWeights& w);
// The widest activation a product reads: what the BLAS scratch holds per token, in 16-bit.
std::size_t widest_input(const ModelConfig& c);

// Decoding steps of at most this many tokens split each split layer between the GPU and the host, so
// that the host's memory bandwidth and the link both carry weights at once: the GPU runs the layer's
// attention and the first rows of its MLP, the host the other rows from pinned RAM (the MLP is a sum
// over its rows), while the copy stream brings the GPU's part of the next layers into the ring. Only
// that part crosses the link. Longer passes (prompts) run every layer on the GPU.
constexpr int gpu_host_max_tokens = 4;

// The link's and the host's rates, in bytes per second, and the time a decode step keeps the host from its
// rows, in seconds, as measured at load. The link copies split layers' GPU parts meanwhile.
struct SplitRates {
    double copy = 0;  // pinned host memory to a device slot
    double host = 0;  // an MLP computed on the host, in weight bytes per second
    // The resident layers and the logits, before the first split layer's MLP input reaches the host: the
    // link copies the next split layers' GPU parts ahead, as many as the ring holds.
    double gpu_alone = 0;
    // In each split layer, enqueueing it until its MLP input reaches the host (its attention): slots free
    // layer by layer then, so the ring does not limit what the link copies meanwhile.
    double split_wait = 0;
};

// Which streamed layers decode split between the GPU and the host, and how many MLP rows the host takes.
struct SplitDecision {
    std::vector<bool> split;  // [n_layer]
    int host_rows = 0;        // of each split layer's MLP
    SplitRates rates;         // what it was decided from; zero when host_share fixed it
    // Decode steps cut the ring into slots of the split layers' GPU parts, so that the copies run
    // further ahead: when every streamed layer splits and none comes from disk (disk layers stream
    // whole, through their slot's staging buffer).
    bool cut_ring = false;
};

// The layers that may split: streamed, pinned (the host computes from the pinned slabs) and splittable;
// none when host_share is 0.
std::vector<int> split_candidates(const GpuPlan& plan, const ModelWeights& w);

// The host's rows: plan.host_share percent of them, or with host_share -1 as many as make the link and
// the host finish a decode step together. The link copies the split layers' GPU parts through the whole
// step; the host computes only in the split layers, after each one's wait. Over the step's n split layers,
// with ahead = min(gpu_alone * copy, the GPU parts the ring holds),
//   (n * gpu_part - ahead) / rates.copy == n * (split_wait + host_part / rates.host),
// where gpu_part + host_part = layer_bytes and host_part = host_rows * row_bytes, rounded so that the GPU's
// rows are a multiple of split_granule. No split when that leaves the host none.
SplitDecision decide_split(const GpuPlan& plan, const ModelWeights& w, const ModelConfig& c,
                           const std::vector<int>& candidates, const SplitRates& rates);

// The decision in a sentence for the load log, with the rates it came from, so that a slow decode can be traced to
// what load measured; empty where no layer could split.
std::string describe_split(const SplitDecision& decision, int n_ff);

}  // namespace runner
