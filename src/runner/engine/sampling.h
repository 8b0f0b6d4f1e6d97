// Token sampling as a chain of steps applied in order (llama.cpp's order): repetition penalties over
// the last N tokens, top-k, top-p, min-p, temperature, then a seeded draw. Temperature 0 is greedy.
#pragma once

#include <cstdint>
#include <optional>
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
    // >= 0: record each sampled token's log-probability and those of this many most likely tokens.
    int logprobs = -1;
};

// Log-probabilities under the model's own distribution: the log-softmax of the raw logits, before
// penalties, a format's mask or any other step (what Ollama's runners report).
struct IdLogprob {
    std::int32_t id = 0;
    float logprob = 0;
};
struct StepLogprobs {
    IdLogprob sampled;
    std::vector<IdLogprob> top;  // most likely first; ties by id
};
StepLogprobs logprobs_of(std::span<const float> logits, std::int32_t sampled, int top);

struct Candidate {
    std::int32_t id;
    float logit;
    float p = 0;
};

// Which tokens may come next (structured output). The completion layer implements it over a grammar and
// the tokenizer; the sampler only asks. It always allows some token: an end of text when nothing else fits.
class TokenConstraint {
  public:
    virtual ~TokenConstraint() = default;
    virtual bool allows(std::int32_t id) const = 0;
    // Every token it does not allow to -infinity.
    virtual void mask(std::span<float> logits) const = 0;
    // `id` was generated (one it allows).
    virtual void accept(std::int32_t id) = 0;
};

class Sampler {
  public:
    // `constraint`, when given, outlives the sampler.
    explicit Sampler(const SamplingParams& params, TokenConstraint* constraint = nullptr);
    // `history`: the prompt and the tokens generated so far.
    std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history);
    // The last sampled token's log-probabilities, when SamplingParams::logprobs asks for them.
    const std::optional<StepLogprobs>& last_logprobs() const { return last_logprobs_; }

  private:
    // A token drawn from adjusted_: the step's logits with penalties applied (and masked, on a second draw).
    std::int32_t pick();

    SamplingParams params_;
    std::mt19937_64 rng_;
    TokenConstraint* constraint_;
    std::optional<StepLogprobs> last_logprobs_;
    std::vector<float> adjusted_;  // the logits with penalties applied
};

// The steps, exposed for tests. Penalties change the logits themselves (a copy the sampler makes), in the
// window's few places; top-k selects in one pass and sorts only what it keeps, most likely first (ties by
// id); k 0 (off) keeps every token in id order, which top-p sorts only as far as its nucleus reaches. The
// others keep the order they find.
void apply_penalties(std::span<float> logits, std::span<const std::int32_t> history, const SamplingParams& p);
std::vector<Candidate> top_k(std::span<const float> logits, int k);
void apply_softmax(std::vector<Candidate>& c);
void apply_top_p(std::vector<Candidate>& c, float top_p);
void apply_min_p(std::vector<Candidate>& c, float min_p);

}  // namespace runner
