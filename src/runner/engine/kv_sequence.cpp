#include "runner/engine/kv_sequence.h"

#include <algorithm>
#include <string>

namespace runner {

std::size_t KvSequence::reusable(std::span<const std::int32_t> prompt) const {
    const auto held = std::mismatch(tokens_.begin(), tokens_.end(), prompt.begin(), prompt.end()).first;
    const auto common = static_cast<std::size_t>(held - tokens_.begin());
    return common == prompt.size() && common > 0 ? common - 1 : common;
}

common::Result<std::span<const float>> KvSequence::forward(std::span<const std::int32_t> tokens, int n_past) {
    if (n_past < 0 || static_cast<std::size_t>(n_past) > tokens_.size())
        return common::make_error("position " + std::to_string(n_past) + " is past the " +
                                  std::to_string(tokens_.size()) + " tokens the KV cache holds");
    tokens_.resize(static_cast<std::size_t>(n_past));
    auto logits = model_->forward(tokens, n_past);
    if (logits) tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
    return logits;
}

}  // namespace runner
