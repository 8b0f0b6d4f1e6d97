// The prompt cache's cases, for any engine: a conversation run through a KvSequence (each request
// reusing what the cache holds) against a second model of the same kind that runs every prompt from
// position 0. The CPU engine's tests and the GPU engine's run them on each of their modes.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "runner/engine/generate.h"
#include "runner/engine/kv_sequence.h"

namespace test_support {

inline std::vector<float> copy_logits(const common::Result<std::span<const float>>& logits) {
    REQUIRE_MESSAGE(logits.ok(), (logits.ok() ? "" : logits.error().message));
    return {logits->begin(), logits->end()};
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    float worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    return worst;
}

// The logits after `prompt` through the cache, which must hold `expect_reused` of its leading tokens,
// against the same prompt from scratch on `fresh`.
inline void check_turn(runner::KvSequence& sequence, runner::LanguageModel& fresh,
                       const std::vector<std::int32_t>& prompt, std::size_t expect_reused, float tolerance) {
    const std::size_t reused = sequence.reusable(prompt);
    CHECK(reused == expect_reused);
    const auto ours = copy_logits(sequence.forward(std::span(prompt).subspan(reused), static_cast<int>(reused)));
    CHECK(std::equal(sequence.tokens().begin(), sequence.tokens().end(), prompt.begin(), prompt.end()));
    const auto scratch = copy_logits(fresh.forward(prompt, 0));
    CHECK(max_abs_diff(ours, scratch) <= tolerance);
}

inline std::vector<std::int32_t> greedy(runner::KvSequence& sequence, const std::vector<std::int32_t>& prompt,
                                        int n_predict, const runner::TokenFn& on_token = nullptr) {
    runner::SamplingParams params;
    params.temperature = 0;
    runner::Sampler sampler(params);
    auto result = runner::generate(sequence, prompt, n_predict, sampler, {}, on_token);
    REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
    return result->ids;
}

// `reused` and `fresh`: two models of the same weights and kind, with a context of at least 64.
inline void check_prefix_reuse(runner::LanguageModel& reused, runner::LanguageModel& fresh, float tolerance) {
    const int n_vocab = reused.config().n_vocab;
    std::vector<std::int32_t> system;
    for (int i = 0; i < 20; ++i) system.push_back((7 + 13 * i) % n_vocab);
    runner::KvSequence sequence(reused);
    CHECK(sequence.reusable(system) == 0);

    // Turn 1, then turn 2 = turn 1, the answer and a new message. The last answer token was sampled
    // but never run, so the cache holds the prompt and all answer tokens but the last.
    const auto answer = greedy(sequence, system, 6);
    REQUIRE(answer.size() == 6);
    CHECK(sequence.tokens().size() == system.size() + 5);
    auto turn2 = system;
    turn2.insert(turn2.end(), answer.begin(), answer.end());
    for (int i = 0; i < 7; ++i) turn2.push_back((3 + 11 * i) % n_vocab);
    SUBCASE("the next turn runs only what follows the cached prefix") {
        check_turn(sequence, fresh, turn2, system.size() + 5, tolerance);
        // The answer to it, token for token as from scratch.
        runner::KvSequence from_scratch(fresh);
        CHECK(greedy(sequence, turn2, 8) == greedy(from_scratch, turn2, 8));
    }
    SUBCASE("the same prompt again runs its last token only") {
        check_turn(sequence, fresh, system, system.size() - 1, tolerance);
    }
    SUBCASE("a shorter prompt that the cache begins with") {
        const std::vector<std::int32_t> shorter(system.begin(), system.begin() + 9);
        check_turn(sequence, fresh, shorter, 8, tolerance);
    }
    SUBCASE("a prompt that diverges at its first or a middle token") {
        auto early = turn2;
        early[0] = (early[0] + 1) % n_vocab;
        check_turn(sequence, fresh, early, 0, tolerance);
        check_turn(sequence, fresh, turn2, 0, tolerance);
        auto middle = turn2;
        middle[12] = (middle[12] + 1) % n_vocab;
        check_turn(sequence, fresh, middle, 12, tolerance);
    }
    SUBCASE("a request cancelled after two tokens leaves what it ran") {
        int seen = 0;
        const auto cut = greedy(sequence, turn2, 20, [&](std::int32_t) { return ++seen < 2; });
        CHECK(cut.size() == 2);
        // The first answer token ran; the second, sampled when the reader left, did not.
        CHECK(sequence.tokens().size() == turn2.size() + 1);
        auto turn3 = turn2;
        turn3.push_back(cut[0]);
        turn3.push_back((turn3.back() + 5) % n_vocab);
        check_turn(sequence, fresh, turn3, turn2.size() + 1, tolerance);
    }
    SUBCASE("a failed pass keeps the cache's record at what is still valid") {
        const std::vector<std::int32_t> bad = {1, n_vocab};
        CHECK_FALSE(sequence.forward(bad, 10).ok());
        CHECK(sequence.tokens().size() == 10);
        check_turn(sequence, fresh, turn2, 10, tolerance);
        CHECK_FALSE(sequence.forward(bad, 11).ok());
        CHECK(sequence.tokens().size() == 11);
    }
    SUBCASE("an answer that fills the context stops there, and the cache serves the next request") {
        const int room = reused.n_ctx() - static_cast<int>(turn2.size());
        runner::SamplingParams params;
        params.temperature = 0;
        runner::Sampler sampler(params);
        const auto full = runner::generate(sequence, turn2, reused.n_ctx(), sampler, {}, nullptr);
        REQUIRE(full.ok());
        CHECK(full->reason == runner::StopReason::context);
        CHECK(full->prompt_reused == system.size() + 5);
        CHECK(static_cast<int>(full->ids.size()) == room);
        CHECK(static_cast<int>(sequence.tokens().size()) == reused.n_ctx() - 1);
        check_turn(sequence, fresh, turn2, turn2.size() - 1, tolerance);
    }
}

}  // namespace test_support
