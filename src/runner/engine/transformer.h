// The forward pass on the CPU: embedding, then per layer RMSNorm, q/k/v, RoPE, grouped-query
// attention over the KV cache, residual, RMSNorm, SwiGLU MLP, residual; then the final norm and the
// LM head. A prompt goes through each layer in one batch; decoding is the same call with one token.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/result.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/engine/cpu_kv_cache.h"
#include "runner/engine/cpu_layer.h"
#include "runner/engine/language_model.h"
#include "runner/model/model_weights.h"

namespace runner {

// Activations, grown to the largest batch seen, and the cache, grown to the positions used: nothing
// is allocated per token.
struct RunState {
    CpuKvCache cache;
    std::vector<float> x;       // [n_batch, n_embd]       residual stream
    LayerScratch layer;         // a layer's activations for n_batch tokens
    std::vector<float> logits;  // [n_vocab]
};

// Which layers stay in memory and which are streamed from their files, from the RAM budget.
struct LayerPlan {
    std::vector<bool> resident;      // [n_layer]
    std::size_t resident_bytes = 0;  // embeddings, output and resident layers
    std::size_t streamed_bytes = 0;  // read again for every forward pass
    int lookahead = 2;               // layers read ahead of the one being computed
};

// `ram_budget` 0: everything resident. Otherwise the embeddings and the output head count first,
// then layers in order while they fit; the rest are streamed.
LayerPlan plan_layers(const ModelWeights& weights, std::size_t ram_budget);

struct StreamStats {
    std::size_t passes = 0;
    std::size_t bytes_streamed = 0;  // weight bytes of streamed layers, summed over passes
};

class Transformer : public LanguageModel {
  public:
    // `n_ctx`: the most positions the cache holds; `threads`: 0 for all hardware threads.
    Transformer(const WeightSource& source, ModelWeights weights, int n_ctx, unsigned threads, LayerPlan plan = {});

    const LayerPlan& plan() const { return plan_; }
    const StreamStats& stream_stats() const { return stats_; }
    // What the KV cache holds now: it grows with the positions used, up to n_ctx.
    std::size_t kv_cache_bytes() const { return s_.cache.bytes(); }

    const ModelConfig& config() const override { return config_; }
    int n_ctx() const override { return n_ctx_; }

    // Reads the resident weights into memory now rather than page by page during the first request.
    common::Result<bool> load(const ProgressFn& progress) override;

    // Runs `tokens` at positions n_past .. n_past + size - 1 and returns the logits of the last one.
    // Errors (a token outside the vocabulary, the context full) leave the state unchanged.
    common::Result<std::span<const float>> forward(std::span<const std::int32_t> tokens, int n_past) override;

  private:
    void embed(std::span<const std::int32_t> tokens);
    void output(std::size_t n);
    void prefetch_layer(int layer) const;
    void release_layer(int layer) const;

    ModelConfig config_;
    ModelWeights w_;
    int n_ctx_;
    cpu::ThreadPool pool_;
    std::vector<float> inv_freq_;  // [head_dim / 2], llama3 scaling applied
    RunState s_;
    LayerPlan plan_;
    StreamStats stats_;
};

// RoPE inverse frequencies as transformers computes them, llama3 scaling included.
std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace runner
