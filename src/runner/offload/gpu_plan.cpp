#include "runner/offload/gpu_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "runner/offload/layer_slab.h"

namespace runner {

namespace {

using namespace layer_slot;

// Activations of one micro-batch of `n` tokens: xb (also the output projection's int8 input, so as wide
// as q), q, k, v, att, gate, up, and the BLAS scratch.
std::size_t activation_bytes(const ModelConfig& c, std::size_t n, bool blas) {
    const std::size_t q = static_cast<std::size_t>(c.n_head) * c.head_dim;
    const std::size_t kv = static_cast<std::size_t>(c.n_head_kv) * c.head_dim;
    const std::size_t xb = std::max(static_cast<std::size_t>(c.n_embd), q);
    const std::size_t blas_scratch = blas ? n * widest_input(c) * 2 : 0;
    return n * (xb + 2 * q + 2 * kv + 2 * static_cast<std::size_t>(c.n_ff)) * sizeof(float) + blas_scratch;
}

// A ring slot holds any streamed layer in either layout.
std::size_t slot_capacity(std::size_t largest) { return slab_aligned(largest + split_extra_bytes); }

std::string mib(std::size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

// Which streamed layers stay pinned in RAM (in order, while `ram_budget` lasts beside the staging
// buffers that disk reads need); the rest are read from disk. `layer_bytes`: each layer's slab.
std::optional<common::Error> plan_host(GpuPlan& plan, const std::vector<std::size_t>& layer_bytes, std::size_t largest,
                                       std::size_t ram_budget) {
    plan.pinned.assign(layer_bytes.size(), false);
    const std::size_t streamed_total = plan.streamed_bytes;
    const bool all_fit = ram_budget == 0 || streamed_total <= ram_budget;
    const std::size_t staging = all_fit ? 0 : 2 * largest;
    for (std::size_t i = 0; i < layer_bytes.size(); ++i) {
        if (plan.resident[i]) continue;
        const auto bytes = layer_bytes[i];
        if (all_fit || plan.pinned_bytes + bytes + staging <= ram_budget) {
            plan.pinned[i] = true;
            plan.pinned_bytes += bytes;
        } else {
            plan.disk_bytes += bytes;
        }
    }
    plan.pinned_bytes += staging;
    // Without a cache compressed layers are made at load; reading them from disk every pass would redo that.
    if (plan.disk_bytes > 0 && plan.compression != Compression::none && plan.cache.empty())
        return common::make_error("with compression the streamed layers must fit in the RAM budget (" +
                                  mib(ram_budget) + " for " + mib(streamed_total) +
                                  "): raise --ram-budget, run ollama-airllm prepare, or use compression none");
    return std::nullopt;
}

}  // namespace

std::size_t attention_scratch_bytes(const ModelConfig& c, int n_ctx, int max_batch, const KernelNeeds& kernels) {
    if (!kernels.attention_scratch) return 0;
    std::size_t most = 0;
    for (int n = 1; n <= max_batch; ++n)
        most = std::max(most, kernels.attention_scratch(n, c.n_head, c.head_dim, n_ctx));
    return most;
}

std::size_t kv_row_bytes(const ModelConfig& c, KvType type) {
    return static_cast<std::size_t>(c.n_head_kv) * c.head_dim * kv_element_bytes(type);
}

std::size_t kv_cache_bytes(const ModelConfig& c, int n_ctx, KvType type) {
    return 2 * static_cast<std::size_t>(c.n_layer) * n_ctx * kv_row_bytes(c, type);
}

std::size_t largest_projection(const ModelConfig& c) {
    const std::size_t e = static_cast<std::size_t>(c.n_embd), q = static_cast<std::size_t>(c.n_head) * c.head_dim;
    return std::max({e * q, e * static_cast<std::size_t>(c.n_ff)});
}

bool has_ggml_blocks(const ModelWeights& w) {
    for (const auto& l : w.layers)
        for (const TensorView* t : layer_tensors(l))
            if (t && is_block_type(t->dtype)) return true;
    return false;
}

std::size_t widest_input(const ModelConfig& c) {
    return static_cast<std::size_t>(std::max({c.n_embd, c.n_head * c.head_dim, c.n_ff}));
}

common::Result<GpuPlan> plan_gpu(const ModelWeights& w, const ModelConfig& c, const GpuOptions& options,
                                 const KernelNeeds& kernels) {
    const int n_ctx = options.n_ctx;
    const auto compression = options.compression;
    const auto vram_budget = options.vram_budget;
    GpuPlan plan;
    plan.n_ctx = n_ctx;
    plan.max_pass = std::min(n_ctx, gpu_max_pass_tokens);
    plan.max_batch = std::max(1, std::min(options.max_batch, plan.max_pass));
    plan.compression = compression;
    plan.kv_type = options.kv_type;
    plan.host_share = options.host_share;
    plan.threads = options.threads;
    plan.graphs = options.graphs;
    plan.blas = kernels.blas;
    if (compression != Compression::none) plan.cache = options.cache;
    plan.widens_weights = compression != Compression::none || has_ggml_blocks(w);
    plan.attention_scratch_bytes = attention_scratch_bytes(c, n_ctx, plan.max_batch, kernels);
    const std::size_t kv = kv_cache_bytes(c, n_ctx, plan.kv_type);
    const std::size_t residual = static_cast<std::size_t>(plan.max_pass) * c.n_embd * sizeof(float);
    const std::size_t activations = activation_bytes(c, static_cast<std::size_t>(plan.max_batch), plan.blas);
    const std::size_t head = slab_aligned(w.output->bytes) + slab_aligned(w.output_norm->bytes);
    const std::size_t small = static_cast<std::size_t>(c.n_vocab) * sizeof(float) + plan.max_pass * sizeof(int) +
                              static_cast<std::size_t>(c.head_dim) * sizeof(float) + plan.attention_scratch_bytes +
                              (plan.widens_weights && plan.blas ? largest_projection(c) * 2 : 0);
    plan.fixed_bytes = kv + residual + activations + head + small;
    plan.kv_near_rows.assign(w.layers.size(), n_ctx);

    std::vector<std::size_t> layer_bytes;
    std::size_t all_layers = 0, largest = 0;
    for (const auto& l : w.layers) {
        layer_bytes.push_back(layout_of(l, compression).bytes);
        all_layers += layer_bytes.back();
        largest = std::max(largest, layer_bytes.back());
    }
    plan.slot_bytes = slot_capacity(largest);
    if (vram_budget == 0 || plan.fixed_bytes + all_layers <= vram_budget) {
        plan.resident.assign(w.layers.size(), true);
        plan.pinned.assign(w.layers.size(), false);
        plan.resident_bytes = all_layers;
        return plan;
    }
    plan.ring_slots = 2;
    plan.fixed_bytes += plan.ring_slots * plan.slot_bytes;
    if (plan.fixed_bytes - kv > vram_budget)
        return common::make_error(
            "a VRAM budget of " + mib(vram_budget) + " cannot hold the activations (" + mib(activations + residual) +
            " for passes of " + std::to_string(plan.max_pass) + " tokens in micro-batches of " +
            std::to_string(plan.max_batch) + "), the output head (" + mib(head) + ") and two streaming slots (" +
            mib(plan.ring_slots * plan.slot_bytes) + "): raise the budget, or lower the micro-batch (--max-batch)");
    const std::size_t n_layer = w.layers.size(), layer_kv = kv / n_layer, row_kv = 2 * kv_row_bytes(c, plan.kv_type);
    int near = options.kv_near_tokens > 0 ? std::min(n_ctx, options.kv_near_tokens) : n_ctx;
    // One layer's worth of VRAM stages a split layer's keys and values for a pass of several tokens, whose
    // attention reads each key once per tile of queries. Where every layer fits beside the near rows and
    // that, nothing streams: no ring, and the cache keeps as many rows near as the budget holds.
    const std::size_t ring = plan.ring_slots * plan.slot_bytes, unringed = plan.fixed_bytes - kv + layer_kv - ring;
    if (near < n_ctx && unringed + all_layers + n_layer * near * row_kv <= vram_budget) {
        near = static_cast<int>((vram_budget - unringed - all_layers) / (n_layer * row_kv));
        plan.ring_slots = 0;
        plan.fixed_bytes -= ring;
    }
    const std::size_t beside = plan.fixed_bytes - kv + layer_kv;
    if (near < n_ctx || plan.fixed_bytes > vram_budget) {
        const std::size_t near_kv = near * row_kv;
        if (beside > vram_budget)
            return common::make_error("a VRAM budget of " + mib(vram_budget) +
                                      " leaves no room to stage one layer's KV cache (" + mib(layer_kv) +
                                      " for a context of " + std::to_string(n_ctx) +
                                      "): raise the budget, or lower the context or the micro-batch (--max-batch)");
        const std::size_t near_layers = std::min(n_layer, (vram_budget - beside) / near_kv);
        std::size_t near_rows = 0;
        for (std::size_t i = 0; i < n_layer; ++i) {
            plan.kv_near_rows[i] = i < near_layers ? near : 0;
            near_rows += static_cast<std::size_t>(plan.kv_near_rows[i]);
        }
        plan.kv_host_bytes = kv - near_rows * row_kv;
        plan.kv_stage_bytes = layer_kv;
        plan.fixed_bytes = beside + near_rows * row_kv;
    }
    for (const auto bytes : layer_bytes) {
        const bool fits = plan.fixed_bytes + plan.resident_bytes + bytes <= vram_budget;
        plan.resident.push_back(fits);
        (fits ? plan.resident_bytes : plan.streamed_bytes) += bytes;
    }
    const std::size_t ram_budget = options.ram_budget;
    if (ram_budget > 0 && plan.kv_host_bytes >= ram_budget)
        return common::make_error("the KV cache's " + mib(plan.kv_host_bytes) +
                                  " that the VRAM budget leaves to host memory do not fit in the RAM budget of " +
                                  mib(ram_budget) + ": lower the context, or raise the VRAM or the RAM budget");
    if (auto error = plan_host(plan, layer_bytes, largest, ram_budget > 0 ? ram_budget - plan.kv_host_bytes : 0))
        return *error;
    return plan;
}

std::vector<int> split_candidates(const GpuPlan& plan, const ModelWeights& w) {
    std::vector<int> candidates;
    if (plan.host_share == 0) return candidates;
    for (std::size_t i = 0; i < w.layers.size(); ++i)
        if (!plan.resident[i] && plan.pinned[i] && splittable(w.layers[i], plan.compression))
            candidates.push_back(static_cast<int>(i));
    return candidates;
}

SplitDecision decide_split(const GpuPlan& plan, const ModelWeights& w, const ModelConfig& c,
                           const std::vector<int>& candidates, const SplitRates& rates) {
    SplitDecision decision;
    decision.split.assign(w.layers.size(), false);
    if (candidates.empty()) return decision;
    const auto layout = layout_of(w.layers[static_cast<std::size_t>(candidates.front())], plan.compression);
    const double n_ff = c.n_ff;
    // a row of gate and up and a column of down, in the slab's format
    const double row_bytes = static_cast<double>(layout.size[w_gate] + layout.size[w_up] + layout.size[w_down]) / n_ff;
    const auto streamed = static_cast<std::size_t>(std::count(plan.resident.begin(), plan.resident.end(), false));
    const bool cut_ring = plan.disk_bytes == 0 && candidates.size() == streamed;
    double host_rows = n_ff * std::min(plan.host_share, 100) / 100.0;
    if (plan.host_share < 0) {
        decision.rates = rates;
        const double n = static_cast<double>(candidates.size()), layer = static_cast<double>(layout.bytes);
        const double copy = rates.copy, host = rates.host, alone = rates.gpu_alone, wait = rates.split_wait;
        // the host's bytes of each split layer with ahead = alone * copy
        double host_bytes = (layer - alone * copy / n - wait * copy) * host / (host + copy);
        // The GPU parts the ring holds: as many as fit where decode steps cut it, else one a slot. Where they
        // hold less than the link copies while the GPU runs alone, ahead = parts * gpu_part; the parts counted
        // at the uncapped share, a few less than at the share this gives.
        const double gpu_part = layer - std::max(0.0, host_bytes);
        const double ring = static_cast<double>(plan.ring_slots) * static_cast<double>(plan.slot_bytes);
        const double parts = std::min(
            n, cut_ring ? std::floor(ring / static_cast<double>(slab_aligned(static_cast<std::size_t>(gpu_part))))
                        : static_cast<double>(plan.ring_slots));
        if (parts * gpu_part < alone * copy)
            host_bytes = ((n - parts) * layer - n * wait * copy) / (n - parts + n * copy / host);
        host_rows = std::max(0.0, host_bytes) / row_bytes;
    }
    const double granule = split_granule(w.layers[static_cast<std::size_t>(candidates.front())], plan.compression);
    const double gpu_rows = std::clamp<double>(std::round((n_ff - host_rows) / granule) * granule, 0, n_ff);
    decision.host_rows = c.n_ff - static_cast<int>(gpu_rows);
    if (decision.host_rows == 0) return decision;
    for (const int layer : candidates) decision.split[static_cast<std::size_t>(layer)] = true;
    decision.cut_ring = cut_ring;
    return decision;
}

std::string describe_split(const SplitDecision& d, int n_ff) {
    const auto layers = std::count(d.split.begin(), d.split.end(), true);
    const SplitRates& r = d.rates;
    const bool measured = r.copy > 0;
    char rates[200] = "";
    if (measured)
        std::snprintf(rates, sizeof rates,
                      " (load measured, both at once, %.1f GB/s over the link and %.1f GB/s for an MLP on the host; "
                      "the GPU alone %.2f ms a step and %.0f us a split layer)",
                      r.copy / 1e9, r.host / 1e9, r.gpu_alone * 1e3, r.split_wait * 1e6);
    if (layers == 0) return measured ? "decode steps split no layer" + std::string(rates) : std::string();
    char said[120];
    std::snprintf(said, sizeof said,
                  "decode steps split %lld streamed layers: the host computes %d of %d MLP rows (%.0f%%)",
                  static_cast<long long>(layers), d.host_rows, n_ff, 100.0 * d.host_rows / n_ff);
    return said + std::string(measured ? rates : ", as --host-share asks");
}

}  // namespace runner
