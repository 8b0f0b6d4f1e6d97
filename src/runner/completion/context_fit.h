// A prompt too long for the context, cut as Ollama cuts one for llama-server when context shifting is on:
// the first n_keep tokens stay (a system prompt's start, the BOS), then the oldest tokens after them go,
// until the prompt takes the context less half of what n_keep leaves, so that half remains to answer in.
// Ollama does not truncate for a runner of the MLX protocol, so the runner does it itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace runner {

struct FittedPrompt {
    std::vector<std::int32_t> ids;
    std::size_t kept = 0;     // leading tokens kept as they were
    std::size_t dropped = 0;  // tokens after those, removed
};

// Whether a prompt of `n_tokens` leaves at least one position of the context to answer in.
inline bool fits_context(std::size_t n_tokens, int n_ctx) { return static_cast<long>(n_tokens) < n_ctx; }

// The prompt cut to fit; for a prompt that does not fit a context of at least 2. `n_keep`: tokens to keep
// from the start, at least 0 (Ollama's -1, keep everything, leaves nothing to cut: the caller refuses
// such a prompt), at most n_ctx - 1.
FittedPrompt fit_to_context(std::span<const std::int32_t> prompt, int n_ctx, int n_keep);

}  // namespace runner
