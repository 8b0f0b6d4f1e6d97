#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>

#include "runner/engine/sampling.h"

namespace {

std::vector<runner::Candidate> candidates(const std::vector<float>& logits) {
    std::vector<runner::Candidate> c;
    for (std::size_t i = 0; i < logits.size(); ++i) c.push_back({static_cast<std::int32_t>(i), logits[i]});
    return c;
}

}  // namespace

TEST_CASE("temperature 0 is greedy, ties to the lowest id") {
    runner::SamplingParams p;
    p.temperature = 0;
    runner::Sampler s(p);
    const std::vector<float> logits = {0.1f, 3.0f, 3.0f, -1.0f};
    CHECK(s.sample(logits, {}) == 1);
    // Over lanes of eight and a tail: the first of equal maxima, wherever they fall.
    std::vector<float> wide(21, 0.0f);
    wide[13] = wide[5] = wide[20] = 2.0f;
    CHECK(s.sample(wide, {}) == 5);
    wide[20] = 2.5f;
    CHECK(s.sample(wide, {}) == 20);
}

TEST_CASE("the same seed gives the same tokens, another seed other tokens") {
    const std::vector<float> logits = {1.0f, 1.1f, 0.9f, 1.05f, 0.95f, 1.0f};
    const auto run = [&](std::uint64_t seed) {
        runner::SamplingParams p;
        p.temperature = 1.0f;
        p.top_k = 0;
        p.top_p = 1.0f;
        p.seed = seed;
        runner::Sampler s(p);
        std::vector<std::int32_t> out;
        for (int i = 0; i < 50; ++i) out.push_back(s.sample(logits, {}));
        return out;
    };
    CHECK(run(42) == run(42));
    CHECK(run(42) != run(43));
}

TEST_CASE("sampling follows the distribution") {
    runner::SamplingParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.seed = 7;
    runner::Sampler s(p);
    const std::vector<float> logits = {0.0f, std::log(3.0f)};  // p = 0.25, 0.75
    int ones = 0;
    for (int i = 0; i < 20000; ++i) ones += s.sample(logits, {});
    CHECK(ones / 20000.0 == doctest::Approx(0.75).epsilon(0.03));
}

TEST_CASE("top-k, top-p and min-p keep what they should") {
    auto c = runner::top_k(std::vector<float>{1, 5, 3, 4, 2, 5}, 3);
    REQUIRE(c.size() == 3);
    CHECK(c[0].id == 1);  // ties by id
    CHECK(c[1].id == 5);
    CHECK(c[2].id == 3);
    CHECK(runner::top_k(std::vector<float>{1, 5, 3}, 0).size() == 3);  // off: every token, in id order
    CHECK(runner::top_k(std::vector<float>{1, 5, 3}, 0)[1].id == 1);

    // Top-p over a whole vocabulary in id order sorts as far as its nucleus: here the 3 most likely of 5,000.
    std::vector<float> wide(5000, 0.0f);
    wide[4000] = 20;
    wide[17] = 19;
    wide[2500] = 18;
    c = runner::top_k(wide, 0);
    runner::apply_top_p(c, 0.99f);
    REQUIRE(c.size() == 3);
    CHECK(c[0].id == 4000);
    CHECK(c[1].id == 17);
    CHECK(c[2].id == 2500);
    // A format's mask leaves -infinity: those go last and out, as any token the nucleus does not reach.
    for (std::size_t i = 0; i < wide.size(); i += 2) wide[i] = -std::numeric_limits<float>::infinity();
    wide[4000] = 20;
    c = runner::top_k(wide, 0);
    runner::apply_top_p(c, 0.99f);
    REQUIRE(c.size() == 2);
    CHECK(c[0].id == 4000);
    CHECK(c[1].id == 17);

    c = candidates({std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)});
    runner::apply_top_p(c, 0.75f);
    CHECK(c.size() == 2);  // 0.5 + 0.3 >= 0.75

    c = candidates({std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)});
    runner::apply_min_p(c, 0.25f);  // keep p >= 0.125
    CHECK(c.size() == 3);
}

TEST_CASE("penalties lower tokens seen in the last N") {
    std::vector<float> c = {2.0f, 2.0f, -1.0f, 0.5f};
    runner::SamplingParams p;
    p.repeat_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.penalty_last_n = 3;
    const std::vector<std::int32_t> history = {1, 0, 2, 2};  // last 3: 0, 2, 2
    runner::apply_penalties(c, history, p);
    CHECK(c[0] == doctest::Approx(2.0f / 2 - 0.25f - 0.5f));
    CHECK(c[1] == doctest::Approx(2.0f));  // token 1 is outside the window
    CHECK(c[2] == doctest::Approx(-1.0f * 2 - 0.5f - 0.5f));
    CHECK(c[3] == doctest::Approx(0.5f));
}

TEST_CASE("logprobs: the raw distribution's log-softmax, the most likely first, whatever the sampler did") {
    const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, -50.0f};
    double sum = 0;
    for (const float l : logits) sum += std::exp(l);
    const auto lp = runner::logprobs_of(logits, 2, 3);
    CHECK(lp.sampled.id == 2);
    CHECK(lp.sampled.logprob == doctest::Approx(2.0 - std::log(sum)).epsilon(1e-6));
    REQUIRE(lp.top.size() == 3);
    CHECK(lp.top[0].id == 1);  // ties by id
    CHECK(lp.top[1].id == 3);
    CHECK(lp.top[2].id == 2);
    CHECK(lp.top[0].logprob == doctest::Approx(3.0 - std::log(sum)).epsilon(1e-6));
    CHECK(runner::logprobs_of(logits, 4, 0).top.empty());
    CHECK(runner::logprobs_of(logits, 4, 50).top.size() == logits.size());

    // A sampler asked for them records the chosen token's, from the logits before its penalty.
    runner::SamplingParams p;
    p.temperature = 0;
    p.repeat_penalty = 100;
    p.penalty_last_n = 8;
    p.logprobs = 2;
    runner::Sampler sampler(p);
    const std::vector<std::int32_t> history = {1, 3};
    const auto id = sampler.sample(logits, history);
    CHECK(id == 2);  // 1 and 3 penalized
    REQUIRE(sampler.last_logprobs());
    CHECK(sampler.last_logprobs()->sampled.logprob == doctest::Approx(lp.sampled.logprob));
    CHECK(sampler.last_logprobs()->top[0].id == 1);
    runner::Sampler quiet(runner::SamplingParams{});
    static_cast<void>(quiet.sample(logits, history));
    CHECK_FALSE(quiet.last_logprobs());
}
