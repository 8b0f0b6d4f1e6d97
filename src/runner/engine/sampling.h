// Token sampling as a chain of steps applied in order (llama.cpp's order): repetition penalties over
// the last N tokens, top-k, top-p, min-p, temperature, then a seeded draw. Temperature 0 is greedy.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace runner {

struct SamplingParams {
    float temperature = 0.8f;
    int top_k = 40;      // 0: off
    float top_p = 0.9f;  // 1: off
    float min_p = 0.0f;  // 0: off
    float repeat_penalty = 1.0f;
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    int penalty_last_n = 64;
    std::uint64_t seed = 0;
};

struct Candidate {
    std::int32_t id;
    float logit;
    float p = 0;
};

class Sampler {
  public:
    explicit Sampler(const SamplingParams& params);
    // `history`: the prompt and the tokens generated so far.
    std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history);

  private:
    SamplingParams params_;
    std::mt19937_64 rng_;
};

// The steps, exposed for tests. Each keeps `c` sorted by logit, descending, where it sorts.
void apply_penalties(std::vector<Candidate>& c, std::span<const std::int32_t> history, const SamplingParams& p);
void apply_top_k(std::vector<Candidate>& c, int k);
void apply_softmax(std::vector<Candidate>& c);
void apply_top_p(std::vector<Candidate>& c, float top_p);
void apply_min_p(std::vector<Candidate>& c, float min_p);

}  // namespace runner
