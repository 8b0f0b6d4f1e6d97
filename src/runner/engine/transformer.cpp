#include "runner/engine/transformer.h"

#include <array>
#include <cmath>
#include <numbers>

#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"
#include "runner/engine/cpu_layer.h"

namespace runner {

std::vector<float> rope_inv_freq(const ModelConfig& c) {
    const std::size_t half = static_cast<std::size_t>(c.head_dim) / 2;
    std::vector<float> inv(half);
    for (std::size_t i = 0; i < half; ++i)
        inv[i] = static_cast<float>(
            1.0 / std::pow(static_cast<double>(c.rope_theta), static_cast<double>(2 * i) / c.head_dim));
    if (c.rope_scaling.type == "llama3") {
        const auto& r = c.rope_scaling;
        const float low_freq_wavelen = r.original_max_position / r.low_freq_factor;
        const float high_freq_wavelen = r.original_max_position / r.high_freq_factor;
        for (auto& f : inv) {
            const float wavelen = 2 * std::numbers::pi_v<float> / f;
            if (wavelen < high_freq_wavelen) continue;
            if (wavelen > low_freq_wavelen) {
                f /= r.factor;
                continue;
            }
            const float smooth =
                (r.original_max_position / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
            f = (1 - smooth) * f / r.factor + smooth * f;
        }
    }
    for (std::size_t i = 0; i < c.rope_freq_factors.size() && i < half; ++i) inv[i] /= c.rope_freq_factors[i];
    return inv;
}

std::optional<common::Error> check_forward(const ModelConfig& config, int n_ctx, std::span<const std::int32_t> tokens,
                                           int n_past) {
    if (tokens.empty()) return common::make_error("no tokens to run");
    if (n_past < 0 || n_past + static_cast<long>(tokens.size()) > n_ctx)
        return common::make_error("context full: " + std::to_string(n_past) + " + " + std::to_string(tokens.size()) +
                                  " tokens > " + std::to_string(n_ctx));
    for (const auto t : tokens)
        if (t < 0 || t >= config.n_vocab)
            return common::make_error("token id " + std::to_string(t) + " is outside the vocabulary of " +
                                      std::to_string(config.n_vocab));
    return std::nullopt;
}

LayerPlan plan_layers(const ModelWeights& w, std::size_t ram_budget) {
    LayerPlan plan;
    plan.resident_bytes = w.token_embd->bytes + w.output_norm->bytes + (w.output != w.token_embd ? w.output->bytes : 0);
    for (const auto& layer : w.layers) {
        const bool fits = ram_budget == 0 || plan.resident_bytes + layer.bytes() <= ram_budget;
        plan.resident.push_back(fits);
        (fits ? plan.resident_bytes : plan.streamed_bytes) += layer.bytes();
    }
    return plan;
}

void Transformer::prefetch_layer(int layer) const {
    if (layer >= config_.n_layer || plan_.resident[static_cast<std::size_t>(layer)]) return;
    will_need(w_.layers[static_cast<std::size_t>(layer)]);
}

void Transformer::release_layer(int layer) const {
    if (plan_.resident[static_cast<std::size_t>(layer)]) return;
    dont_need(w_.layers[static_cast<std::size_t>(layer)]);
}

common::Result<bool> Transformer::load(const ProgressFn& progress) {
    std::vector<const TensorView*> tensors = {w_.token_embd, w_.output_norm};
    if (w_.output != w_.token_embd) tensors.push_back(w_.output);
    for (std::size_t i = 0; i < w_.layers.size(); ++i) {
        if (!plan_.resident[i]) continue;
        for (const TensorView* t : layer_tensors(w_.layers[i]))
            if (t) tensors.push_back(t);
    }
    std::size_t total = 0, done = 0;
    for (const auto* t : tensors) total += t->bytes;
    // Touching a byte per page makes the kernel read it; reading ahead first turns that into large reads.
    constexpr std::size_t page = 4096;
    for (const auto* t : tensors) {
        if (t->file) t->file->will_need(t->file_offset, t->bytes);
        unsigned char sink = 0;
        for (std::size_t off = 0; off < t->bytes; off += page) sink ^= static_cast<unsigned char>(t->data[off]);
        [[maybe_unused]] volatile unsigned char keep = sink;
        done += t->bytes;
        if (!progress(done, total)) return false;
    }
    return true;
}

Transformer::Transformer(const WeightSource& source, ModelWeights weights, int n_ctx, unsigned threads, LayerPlan plan)
    : config_(source.config()),
      w_(std::move(weights)),
      n_ctx_(n_ctx),
      pool_(threads),
      inv_freq_(rope_inv_freq(config_)),
      s_{CpuKvCache(config_.n_layer, static_cast<std::size_t>(config_.n_head_kv) * config_.head_dim, n_ctx),
         {},
         {},
         {}},
      plan_(plan.resident.empty() ? plan_layers(w_, 0) : std::move(plan)) {
    s_.logits.resize(static_cast<std::size_t>(config_.n_vocab));
}

void Transformer::embed(std::span<const std::int32_t> tokens) {
    const auto& e = *w_.token_embd;
    const std::size_t stride = row_bytes(e.dtype, static_cast<std::size_t>(config_.n_embd));
    for (std::size_t t = 0; t < tokens.size(); ++t)
        cpu::convert_row(e.dtype, e.data + static_cast<std::size_t>(tokens[t]) * stride,
                         s_.x.data() + t * config_.n_embd, static_cast<std::size_t>(config_.n_embd));
}

void Transformer::output(std::size_t n) {
    const std::size_t e = static_cast<std::size_t>(config_.n_embd);
    // final rmsnorm of the last token, then the classifier
    cpu::rmsnorm(s_.layer.xb.data(), s_.x.data() + (n - 1) * e, *w_.output_norm, 1, e, config_.rms_eps);
    cpu::matmul(s_.logits.data(), s_.layer.xb.data(), *w_.output, nullptr, 1, pool_);
}

common::Result<std::span<const float>> Transformer::forward(std::span<const std::int32_t> tokens, int n_past) {
    if (auto error = check_forward(config_, n_ctx_, tokens, n_past)) return *error;
    const std::size_t n = tokens.size();
    if (s_.x.size() < n * config_.n_embd) s_.x.resize(n * config_.n_embd);
    s_.layer.reserve(config_, n);
    s_.cache.reserve(n_past + static_cast<int>(n));
    std::vector<int> positions(n);
    for (std::size_t t = 0; t < n; ++t) positions[t] = n_past + static_cast<int>(t);

    embed(tokens);
    // Streamed layers: the kernel reads the next ones ahead while this one computes, and drops each
    // after use, so only the resident part and a few layers occupy memory.
    for (int ahead = 0; ahead < plan_.lookahead; ++ahead) prefetch_layer(ahead);
    for (int layer = 0; layer < config_.n_layer; ++layer) {
        prefetch_layer(layer + plan_.lookahead);
        cpu_layer_forward(config_, w_.layers[static_cast<std::size_t>(layer)], s_.x.data(), n, positions.data(),
                          inv_freq_.data(), s_.cache.keys(layer), s_.cache.values(layer), s_.layer, pool_);
        release_layer(layer);
    }
    output(n);
    ++stats_.passes;
    stats_.bytes_streamed += plan_.streamed_bytes;
    return std::span<const float>(s_.logits);
}

}  // namespace runner
