// The generation loop: the part of the prompt the KV cache does not already hold in one batched pass,
// then one token at a time until an EOS id, the token limit, the context end, or the callback asks to
// stop. Afterwards the cache holds the prompt and every answer token that went through the model (the
// last one sampled does not), whichever way it ended, so the next request can start from it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/engine/kv_sequence.h"
#include "runner/engine/sampling.h"

namespace runner {

enum class StopReason { eos, length, context, callback };

struct GenerateResult {
    std::vector<std::int32_t> ids;  // generated, without the prompt; an EOS id is not included
    StopReason reason = StopReason::length;
    std::size_t prompt_reused = 0;  // leading prompt tokens the cache already held: not run again
    double prompt_seconds = 0;      // for the rest
    double decode_seconds = 0;
};

// Return false to stop after this token (a stop string matched, the client went away).
using TokenFn = std::function<bool(std::int32_t)>;

common::Result<GenerateResult> generate(KvSequence& sequence, std::span<const std::int32_t> prompt, int n_predict,
                                        Sampler& sampler, const std::vector<std::int32_t>& eos_ids,
                                        const TokenFn& on_token);

}  // namespace runner
