// What generation and the server need from a model, whichever backend runs it: the CPU transformer
// or the GPU one with its layer tiers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"
#include "runner/model/model_config.h"

namespace runner {

// Bytes done of a total; returning false asks the work to stop.
using ProgressFn = std::function<bool(std::size_t done, std::size_t total)>;

class LanguageModel {
  public:
    virtual ~LanguageModel() = default;
    // Puts the weights where the plan says, ahead of the first request: resident layers read into
    // memory or uploaded to the GPU, streamed ones pinned. false when `progress` stopped it.
    virtual common::Result<bool> load(const ProgressFn& progress) = 0;
    // What load() decided that the plan could not say before it, for the log; empty when nothing.
    virtual std::string load_summary() const { return {}; }
    virtual const ModelConfig& config() const = 0;
    virtual int n_ctx() const = 0;
    // Runs `tokens` at positions n_past .. n_past + size - 1 and returns the logits of the last one
    // ([n_vocab], valid until the next call). Errors leave the cache as it was.
    virtual common::Result<std::span<const float>> forward(std::span<const std::int32_t> tokens, int n_past) = 0;
};

// What every backend checks before a forward pass: tokens present, inside the vocabulary and the
// context. nullopt when they are.
std::optional<common::Error> check_forward(const ModelConfig& config, int n_ctx, std::span<const std::int32_t> tokens,
                                           int n_past);

}  // namespace runner
