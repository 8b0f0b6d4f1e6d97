#include "runner/engine/generate.h"

#include <algorithm>
#include <chrono>

namespace runner {

common::Result<GenerateResult> generate(KvSequence& sequence, std::span<const std::int32_t> prompt, int n_predict,
                                        Sampler& sampler, const std::vector<std::int32_t>& eos_ids,
                                        const TokenFn& on_token) {
    using clock = std::chrono::steady_clock;
    GenerateResult result;
    std::vector<std::int32_t> history(prompt.begin(), prompt.end());
    result.prompt_reused = sequence.reusable(prompt);
    auto start = clock::now();
    auto logits = sequence.forward(prompt.subspan(result.prompt_reused), static_cast<int>(result.prompt_reused));
    if (!logits) return logits.error();
    result.prompt_seconds = std::chrono::duration<double>(clock::now() - start).count();

    start = clock::now();
    for (int i = 0; i < n_predict; ++i) {
        const std::int32_t token = sampler.sample(*logits, history);
        if (std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end()) {
            result.reason = StopReason::eos;
            break;
        }
        result.ids.push_back(token);
        history.push_back(token);
        if (on_token && !on_token(token)) {
            result.reason = StopReason::callback;
            break;
        }
        if (i + 1 == n_predict) break;
        if (static_cast<int>(history.size()) >= sequence.model().n_ctx()) {
            result.reason = StopReason::context;
            break;
        }
        const std::int32_t next[] = {token};
        logits = sequence.forward(next, static_cast<int>(history.size()) - 1);
        if (!logits) return logits.error();
    }
    result.decode_seconds = std::chrono::duration<double>(clock::now() - start).count();
    return result;
}

}  // namespace runner
