#include "runner/engine/sampling.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace runner {

namespace {

bool more_likely(const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// The first index of the largest value: eight running maxima, so that no comparison waits on the one before
// (std::max_element's branch a value took a 128k vocabulary's step 4 times as long), then the first place
// holding it, which gives ties to the lowest id.
std::int32_t first_argmax(std::span<const float> v) {
    std::array<float, 8> lanes;
    lanes.fill(-std::numeric_limits<float>::infinity());
    std::size_t i = 0;
    for (; i + lanes.size() <= v.size(); i += lanes.size())
        for (std::size_t j = 0; j < lanes.size(); ++j) lanes[j] = std::max(lanes[j], v[i + j]);
    float best = *std::max_element(lanes.begin(), lanes.end());
    for (; i < v.size(); ++i) best = std::max(best, v[i]);
    const auto at = std::find(v.begin(), v.end(), best);
    return static_cast<std::int32_t>(at == v.end() ? 0 : at - v.begin());  // NaN everywhere: the first token
}

}  // namespace

void apply_penalties(std::span<float> logits, std::span<const std::int32_t> history, const SamplingParams& p) {
    if (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f) return;
    const std::size_t n = std::min(history.size(), static_cast<std::size_t>(std::max(0, p.penalty_last_n)));
    // The window's tokens with their counts, as runs of a sorted copy: a few dozen places, not a pass over the
    // vocabulary.
    std::vector<std::int32_t> recent(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    std::sort(recent.begin(), recent.end());
    for (auto run = recent.begin(); run != recent.end();) {
        const auto end = std::upper_bound(run, recent.end(), *run);
        const auto id = static_cast<std::size_t>(*run);
        const auto count = static_cast<float>(end - run);
        run = end;
        if (id >= logits.size()) continue;
        float& logit = logits[id];
        // As llama.cpp: the repeat penalty shrinks a logit's magnitude toward less likely.
        logit = logit > 0 ? logit / p.repeat_penalty : logit * p.repeat_penalty;
        logit -= count * p.frequency_penalty + p.presence_penalty;
    }
}

std::vector<Candidate> top_k(std::span<const float> logits, int k) {
    std::vector<Candidate> c;
    if (k <= 0 || static_cast<std::size_t>(k) >= logits.size()) {
        c.resize(logits.size());
        for (std::size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<std::int32_t>(i), logits[i]};
        if (k > 0) std::sort(c.begin(), c.end(), more_likely);
        return c;
    }
    // A heap of the k most likely so far, the least of them on top: most tokens fail one comparison with it.
    c.reserve(static_cast<std::size_t>(k));
    for (std::size_t i = 0; i < logits.size(); ++i) {
        const Candidate cand{static_cast<std::int32_t>(i), logits[i]};
        if (c.size() < static_cast<std::size_t>(k)) {
            c.push_back(cand);
            std::push_heap(c.begin(), c.end(), more_likely);
        } else if (more_likely(cand, c.front())) {
            std::pop_heap(c.begin(), c.end(), more_likely);
            c.back() = cand;
            std::push_heap(c.begin(), c.end(), more_likely);
        }
    }
    std::sort(c.begin(), c.end(), more_likely);
    return c;
}

void apply_softmax(std::vector<Candidate>& c) {
    const float max_logit = std::max_element(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
                                return a.logit < b.logit;
                            })->logit;
    double sum = 0;
    for (auto& cand : c) sum += (cand.p = std::exp(cand.logit - max_logit));
    for (auto& cand : c) cand.p = static_cast<float>(cand.p / sum);
}

void apply_top_p(std::vector<Candidate>& c, float top_p) {
    if (top_p >= 1.0f) return;
    apply_softmax(c);
    // Only the nucleus is sorted. Over a whole vocabulary it is found first by buckets of logits: their mass,
    // from the most likely down, reaches top_p at bucket `last`, and nothing below that bucket can be in it.
    auto nucleus = c.end();
    if (c.size() > 1024) {
        constexpr std::size_t buckets = 4096;
        // The range of the finite logits (a format's mask leaves -infinity, which goes to the last bucket).
        float top = -std::numeric_limits<float>::infinity(), low = std::numeric_limits<float>::infinity();
        for (const auto& cand : c)
            if (std::isfinite(cand.logit)) {
                top = std::max(top, cand.logit);
                low = std::min(low, cand.logit);
            }
        const float scale = static_cast<float>(buckets - 1) / std::max(top - low, 1e-6f);
        const auto bucket = [&](const Candidate& cand) {
            const float at = (top - cand.logit) * scale;  // not below 0; infinite or NaN past the last bucket
            return at < static_cast<float>(buckets - 1) ? static_cast<std::size_t>(at) : buckets - 1;
        };
        std::vector<double> mass(buckets, 0.0);
        for (const auto& cand : c) mass[bucket(cand)] += cand.p;
        std::size_t last = 0;
        for (double sum = mass[0]; sum < top_p && last + 1 < buckets;) sum += mass[++last];
        nucleus = std::partition(c.begin(), c.end(), [&](const Candidate& cand) { return bucket(cand) <= last; });
    }
    std::sort(c.begin(), nucleus, more_likely);
    float cumulative = 0;
    std::size_t keep = 0;
    const auto sorted = static_cast<std::size_t>(nucleus - c.begin());
    while (keep < sorted) {
        cumulative += c[keep++].p;
        if (cumulative >= top_p) break;
    }
    c.resize(keep);
}

void apply_min_p(std::vector<Candidate>& c, float min_p) {
    if (min_p <= 0.0f) return;
    apply_softmax(c);
    const float threshold =
        std::max_element(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.p < b.p; })->p *
        min_p;
    std::erase_if(c, [threshold](const Candidate& cand) { return cand.p < threshold; });
}

Sampler::Sampler(const SamplingParams& params, TokenConstraint* constraint)
    : params_(params), rng_(params.seed), constraint_(constraint) {}

// As llama.cpp samples under a grammar: the unconstrained choice first, which the constraint usually allows
// (checking one token is cheap, masking a vocabulary is not); only when it does not, the choice again
// among the tokens the constraint allows.
// Penalties leave a masked -infinity as it is, so the mask goes onto the penalized logits, not a copy. (Where
// no token can continue, the ends of text get logit 0 after the penalties, so a penalized end is drawn as
// often as another.)
std::int32_t Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> history) {
    adjusted_.assign(logits.begin(), logits.end());  // kept between steps: a vocabulary's floats, not reallocated
    apply_penalties(adjusted_, history, params_);
    std::int32_t id = pick();
    if (constraint_) {
        if (!constraint_->allows(id)) {
            constraint_->mask(adjusted_);
            id = pick();
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
    for (const Candidate& c : top_k(logits, top)) out.top.push_back({c.id, c.logit - log_sum});
    return out;
}

std::int32_t Sampler::pick() {
    if (params_.temperature <= 0.0f) {
        // Greedy, as llama.cpp and Ollama treat temperature 0; ties go to the lowest id, as argmax does.
        return first_argmax(adjusted_);
    }
    std::vector<Candidate> c = top_k(adjusted_, params_.top_k);
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
    // Rounding left r past the sum: the last token that has a chance (a masked one has none).
    const auto last = std::find_if(c.rbegin(), c.rend(), [](const Candidate& cand) { return cand.p > 0; });
    return last != c.rend() ? last->id : c.front().id;
}

}  // namespace runner
