// The tokens a model's KV cache holds, position by position, so that a request that begins as the
// last one did runs only what is new: a coding agent resends its system prompt, its tools and the whole
// conversation on every turn (llama-server's prompt cache does the same). An engine's forward(tokens,
// n_past) writes keys and values from n_past on and attends only to positions before each token's own,
// so reuse needs nothing from the engines beyond that contract: only the record of what sits where.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "runner/engine/language_model.h"

namespace runner {

class KvSequence {
  public:
    explicit KvSequence(LanguageModel& model) : model_(&model) {}

    LanguageModel& model() const { return *model_; }
    // What the cache holds, from position 0.
    std::span<const std::int32_t> tokens() const { return tokens_; }

    // How many leading tokens of `prompt` are already in the cache: the common prefix, less one when it
    // is the whole prompt, since the prompt's last token must run for the logits that choose the answer's
    // first token.
    std::size_t reusable(std::span<const std::int32_t> prompt) const;

    // The model's forward pass at n_past (at most tokens().size()), recorded: afterwards the cache holds
    // the first n_past tokens it held and then `tokens`. When the pass fails the record ends at n_past,
    // since an engine may have written some positions beyond it before the error.
    common::Result<std::span<const float>> forward(std::span<const std::int32_t> tokens, int n_past);

  private:
    LanguageModel* model_;
    std::vector<std::int32_t> tokens_;
};

}  // namespace runner
