// The sampling settings `ollama run` and Ollama's API send unless a request or Modelfile sets its own
// (api.DefaultOptions): what a benchmark samples with to include what Ollama's users pay a token.
#pragma once

#include "runner/engine/sampling.h"

namespace bench {

inline runner::SamplingParams ollama_default_sampling() {
    runner::SamplingParams p;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.9f;
    p.min_p = 0;
    p.repeat_penalty = 1.1f;
    p.penalty_last_n = 64;
    p.seed = 1;
    return p;
}

}  // namespace bench
