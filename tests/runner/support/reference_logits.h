// Any engine's logits against a reference file's (tools/reference/: transformers for the safetensors
// models, a float64 numpy pass for the GGUF ones): the prompt's, then each decode step's, fed the
// reference's own greedy tokens so that every step is compared. The CPU and GPU engines' tests share it.
#pragma once

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "runner/engine/language_model.h"

namespace test_support {

inline float max_abs_diff(std::span<const float> ours, const nlohmann::json& ref) {
    REQUIRE(ours.size() == ref.size());
    float worst = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::abs(ours[i] - ref[i].get<float>()));
    return worst;
}

// The model fed the reference's prompt, then each of its greedy tokens; check(step, logits) sees the
// logits to compare with ref["logits"][step].
template <class Check>
void for_each_reference_step(runner::LanguageModel& model, const nlohmann::json& ref, Check check) {
    const auto prompt = ref["prompt_ids"].get<std::vector<std::int32_t>>();
    auto logits = model.forward(prompt, 0);
    REQUIRE_MESSAGE(logits.ok(), (logits.ok() ? "" : logits.error().message));
    check(std::size_t{0}, *logits);
    const auto greedy = ref["greedy_ids"].get<std::vector<std::int32_t>>();
    for (std::size_t step = 1; step < ref["logits"].size(); ++step) {
        CAPTURE(step);
        const std::int32_t token[] = {greedy[step - 1]};
        logits = model.forward(token, static_cast<int>(prompt.size() + step - 1));
        REQUIRE(logits.ok());
        check(step, *logits);
    }
}

inline void check_reference_logits(runner::LanguageModel& model, const nlohmann::json& ref, float tolerance) {
    for_each_reference_step(model, ref, [&](std::size_t step, std::span<const float> logits) {
        CHECK(max_abs_diff(logits, ref["logits"][step]) < tolerance);
    });
}

}  // namespace test_support
