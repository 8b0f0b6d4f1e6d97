// fit_to_context: a prompt too long for the context keeps n_keep tokens and its end, and leaves half of
// what n_keep does not take to the answer.
#include <doctest/doctest.h>

#include <numeric>
#include <vector>

#include "runner/completion/context_fit.h"

namespace {

std::vector<std::int32_t> iota(int n) {
    std::vector<std::int32_t> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

}  // namespace

TEST_CASE("context fit: a prompt fits while it leaves one position to answer in") {
    CHECK(runner::fits_context(63, 64));
    CHECK_FALSE(runner::fits_context(64, 64));
    CHECK_FALSE(runner::fits_context(1000, 64));
}

TEST_CASE("context fit: the first n_keep tokens and the newest, the oldest in between dropped") {
    struct Row {
        int n_prompt, n_ctx, n_keep, expect_size;
    };
    // size = n_ctx - max((n_ctx - keep) / 2, 1), keep clamped to n_ctx - 1
    for (const auto& [n_prompt, n_ctx, n_keep, expect_size] :
         {Row{100, 64, 4, 34}, Row{64, 64, 0, 32}, Row{100, 64, 5, 35}, Row{5000, 4096, 1500, 2798},
          Row{100, 64, 63, 63}, Row{100, 64, 500, 63}, Row{70, 2, 0, 1}}) {
        CAPTURE(n_prompt);
        CAPTURE(n_ctx);
        CAPTURE(n_keep);
        const auto prompt = iota(n_prompt);
        const auto fitted = runner::fit_to_context(prompt, n_ctx, n_keep);
        const auto keep = static_cast<std::size_t>(std::min(n_keep, n_ctx - 1));
        REQUIRE(fitted.ids.size() == static_cast<std::size_t>(expect_size));
        CHECK(runner::fits_context(fitted.ids.size(), n_ctx));
        CHECK(fitted.kept == keep);
        CHECK(fitted.dropped == static_cast<std::size_t>(n_prompt - expect_size));
        // The kept head, then the prompt's end, in order.
        for (std::size_t i = 0; i < fitted.ids.size(); ++i)
            CHECK(fitted.ids[i] == (i < keep ? static_cast<std::int32_t>(i)
                                             : static_cast<std::int32_t>(n_prompt - (fitted.ids.size() - i))));
    }
}
