// The generation loop: the prompt in one batched pass, then one token at a time until an EOS id,
// the token limit, the context end, or the callback asks to stop.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/engine/language_model.h"
#include "runner/engine/sampling.h"

namespace runner {

enum class StopReason { eos, length, context, callback };

struct GenerateResult {
    std::vector<std::int32_t> ids;  // generated, without the prompt; an EOS id is not included
    StopReason reason = StopReason::length;
    double prompt_seconds = 0;
    double decode_seconds = 0;
};

// Return false to stop after this token (a stop string matched, the client went away).
using TokenFn = std::function<bool(std::int32_t)>;

common::Result<GenerateResult> generate(LanguageModel& model, std::span<const std::int32_t> prompt, int n_predict,
                                        Sampler& sampler, const std::vector<std::int32_t>& eos_ids,
                                        const TokenFn& on_token);

}  // namespace runner
