#include "runner/engine/sampling.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace runner {

namespace {

void sort_desc(std::vector<Candidate>& c) {
    std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    });
}

}  // namespace

void apply_penalties(std::vector<Candidate>& c, std::span<const std::int32_t> history, const SamplingParams& p) {
    if (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f) return;
    const std::size_t n = std::min(history.size(), static_cast<std::size_t>(std::max(0, p.penalty_last_n)));
    std::unordered_map<std::int32_t, int> counts;
    for (std::size_t i = history.size() - n; i < history.size(); ++i) ++counts[history[i]];
    for (auto& cand : c) {
        const auto it = counts.find(cand.id);
        if (it == counts.end()) continue;
        // As llama.cpp: the repeat penalty shrinks a logit's magnitude toward less likely.
        cand.logit = cand.logit > 0 ? cand.logit / p.repeat_penalty : cand.logit * p.repeat_penalty;
        cand.logit -= static_cast<float>(it->second) * p.frequency_penalty + p.presence_penalty;
    }
}

void apply_top_k(std::vector<Candidate>& c, int k) {
    sort_desc(c);
    if (k > 0 && static_cast<std::size_t>(k) < c.size()) c.resize(static_cast<std::size_t>(k));
}

void apply_softmax(std::vector<Candidate>& c) {
    sort_desc(c);
    const float max_logit = c.front().logit;
    double sum = 0;
    for (auto& cand : c) sum += (cand.p = std::exp(cand.logit - max_logit));
    for (auto& cand : c) cand.p = static_cast<float>(cand.p / sum);
}

void apply_top_p(std::vector<Candidate>& c, float top_p) {
    if (top_p >= 1.0f) return;
    apply_softmax(c);
    float cumulative = 0;
    std::size_t keep = 0;
    while (keep < c.size()) {
        cumulative += c[keep++].p;
        if (cumulative >= top_p) break;
    }
    c.resize(std::max<std::size_t>(1, keep));
}

void apply_min_p(std::vector<Candidate>& c, float min_p) {
    if (min_p <= 0.0f) return;
    apply_softmax(c);
    const float threshold = c.front().p * min_p;
    std::size_t keep = 1;
    while (keep < c.size() && c[keep].p >= threshold) ++keep;
    c.resize(keep);
}

Sampler::Sampler(const SamplingParams& params, TokenConstraint* constraint)
    : params_(params), rng_(params.seed), constraint_(constraint) {}

// As llama.cpp samples under a grammar: the unconstrained choice first, which the constraint usually allows
// (checking one token is cheap, masking a vocabulary is not); only when it does not, the choice again
// among the tokens the constraint allows.
std::int32_t Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> history) {
    std::int32_t id = pick(logits, history);
    if (constraint_) {
        if (!constraint_->allows(id)) {
            std::vector<float> masked(logits.begin(), logits.end());
            constraint_->mask(masked);
            id = pick(masked, history);
        }
        constraint_->accept(id);
    }
    if (params_.logprobs >= 0) last_logprobs_ = logprobs_of(logits, id, params_.logprobs);
    return id;
}

StepLogprobs logprobs_of(std::span<const float> logits, std::int32_t sampled, int top) {
    const float max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (const float l : logits) sum += std::exp(static_cast<double>(l - max_logit));
    const float log_sum = max_logit + static_cast<float>(std::log(sum));
    StepLogprobs out;
    out.sampled = {sampled, logits[static_cast<std::size_t>(sampled)] - log_sum};
    if (top <= 0) return out;
    std::vector<IdLogprob> all(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i) all[i] = {static_cast<std::int32_t>(i), logits[i] - log_sum};
    const auto k = std::min(all.size(), static_cast<std::size_t>(top));
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                      [](const IdLogprob& a, const IdLogprob& b) {
                          return a.logprob > b.logprob || (a.logprob == b.logprob && a.id < b.id);
                      });
    out.top.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
    return out;
}

std::int32_t Sampler::pick(std::span<const float> logits, std::span<const std::int32_t> history) {
    std::vector<Candidate> c(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<std::int32_t>(i), logits[i]};
    apply_penalties(c, history, params_);
    if (params_.temperature <= 0.0f) {
        // Greedy, as llama.cpp and Ollama treat temperature 0; ties go to the lowest id, as argmax does.
        return std::max_element(c.begin(), c.end(),
                                [](const Candidate& a, const Candidate& b) {
                                    return a.logit < b.logit || (a.logit == b.logit && a.id > b.id);
                                })
            ->id;
    }
    apply_top_k(c, params_.top_k);
    apply_top_p(c, params_.top_p);
    apply_min_p(c, params_.min_p);
    for (auto& cand : c) cand.logit /= params_.temperature;
    apply_softmax(c);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    const float r = uniform(rng_);
    float cumulative = 0;
    for (const auto& cand : c) {
        cumulative += cand.p;
        if (r < cumulative) return cand.id;
    }
    // Rounding left r past the sum: the least likely token that has a chance (a masked one has none).
    const auto last = std::find_if(c.rbegin(), c.rend(), [](const Candidate& cand) { return cand.p > 0; });
    return last != c.rend() ? last->id : c.front().id;
}

}  // namespace runner
