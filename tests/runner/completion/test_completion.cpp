// complete() on a real tiny model and its tokenizer (tests/fixtures/models/qwen2-bias-tied): the text the
// callback gets, stop strings, token limits and a reader that leaves.
#include <doctest/doctest.h>

#include <filesystem>

#include "runner/completion/completion.h"
#include "runner/engine/transformer.h"
#include "runner/model/hf_folder.h"

namespace fs = std::filesystem;

namespace {

const fs::path model_dir = fs::path(OAR_FIXTURES) / "models" / "qwen2-bias-tied";

struct Fixture {
    std::unique_ptr<runner::WeightSource> source = std::move(runner::open_hf_folder(model_dir)).value();
    runner::Transformer model{*source, std::move(runner::bind_weights(*source)).value(), 64, 2};
    tokenizer::Tokenizer tok =
        std::move(tokenizer::Tokenizer::load(model_dir / "tokenizer.json", model_dir / "tokenizer_config.json"))
            .value();
    std::vector<std::int32_t> prompt;
    Fixture() {
        for (const auto id : tok.encode("The quick brown fox")) prompt.push_back(id);
    }

    struct Run {
        runner::CompletionOutcome outcome;
        std::vector<std::string> pieces;
        std::string text() const {
            std::string all;
            for (const auto& p : pieces) all += p;
            return all;
        }
    };
    Run run(int num_predict, std::vector<std::string> stop = {}, std::size_t leave_after = SIZE_MAX,
            bool with_tokenizer = true) {
        runner::CompletionParams params;
        params.sampling.temperature = 0;
        params.num_predict = num_predict;
        params.stop = std::move(stop);
        Run r;
        runner::KvSequence sequence(model);
        auto done =
            runner::complete(sequence, with_tokenizer ? &tok : nullptr, prompt, params, [&](const runner::Piece& p) {
                r.pieces.push_back(p.text);
                return r.pieces.size() < leave_after;
            });
        REQUIRE_MESSAGE(done.ok(), (done.ok() ? "" : done.error().message));
        r.outcome = std::move(done).value();
        return r;
    }
};

}  // namespace

TEST_CASE("completion: the pieces are the decoded answer, and the token limit ends it with length") {
    Fixture f;
    const auto r = f.run(24);
    CHECK(r.outcome.ids.size() == 24);
    CHECK(r.outcome.finish == runner::Finish::length);
    CHECK(std::string(runner::finish_name(r.outcome.finish)) == "length");
    CHECK(r.outcome.prompt_tokens == f.prompt.size());
    CHECK(r.text() == f.tok.decode(r.outcome.ids).value());
    for (const auto& p : r.pieces) CHECK_FALSE(p.empty());
}

TEST_CASE("completion: a stop string ends the answer before it, and none of it reaches the callback") {
    Fixture f;
    const auto whole = f.run(24).text();
    REQUIRE(whole.size() > 12);
    // Three bytes from the middle of the greedy answer: likely across a token boundary.
    const auto stop = whole.substr(whole.size() / 2 - 1, 3);
    const auto r = f.run(24, {"never appears", stop});
    CHECK(r.text() == whole.substr(0, whole.find(stop)));
    CHECK(r.outcome.finish == runner::Finish::stop_string);
    CHECK(std::string(runner::finish_name(r.outcome.finish)) == "stop");
    CHECK(r.outcome.ids.size() < 24);
}

TEST_CASE("completion: a reader that leaves ends generation at once") {
    Fixture f;
    const auto r = f.run(24, {}, 1);
    CHECK(r.pieces.size() == 1);
    CHECK(r.outcome.finish == runner::Finish::client_left);
    CHECK(r.outcome.ids.size() < 24);
}

TEST_CASE("completion: without a tokenizer the ids are the same and no text or stop applies") {
    Fixture f;
    const auto with = f.run(12);
    const auto without = f.run(12, {with.text().substr(0, 2)}, SIZE_MAX, false);
    CHECK(without.pieces.empty());
    CHECK(without.outcome.ids == with.outcome.ids);
    CHECK(without.outcome.finish == runner::Finish::length);
}

TEST_CASE("completion: with no limit the answer runs to the end of the context") {
    Fixture f;
    const auto r = f.run(-1);
    CHECK(r.outcome.finish == runner::Finish::context);
    CHECK(r.outcome.ids.size() + f.prompt.size() == 64);
}

TEST_CASE("completion: logprobs come with the pieces, one per token, the greedy token the most likely") {
    Fixture f;
    runner::CompletionParams params;
    params.sampling.temperature = 0;
    params.sampling.logprobs = 3;
    params.num_predict = 12;
    runner::KvSequence sequence(f.model);
    std::vector<runner::Logprob> all;
    std::string text;
    auto done = runner::complete(sequence, &f.tok, f.prompt, params, [&](const runner::Piece& p) {
        text += p.text;
        all.insert(all.end(), p.logprobs.begin(), p.logprobs.end());
        return true;
    });
    REQUIRE(done.ok());
    REQUIRE(all.size() == done->ids.size());
    std::string joined;
    for (std::size_t i = 0; i < all.size(); ++i) {
        CAPTURE(i);
        joined += all[i].token.token;
        CHECK(all[i].token.logprob <= 0);
        REQUIRE(all[i].top.size() == 3);
        CHECK(all[i].top[0].token == all[i].token.token);
        CHECK(all[i].top[0].logprob == doctest::Approx(all[i].token.logprob));
        CHECK(all[i].top[0].logprob >= all[i].top[1].logprob);
        CHECK(all[i].top[1].logprob >= all[i].top[2].logprob);
    }
    CHECK(joined == text);  // this vocabulary's tokens decode alone to what they add

    runner::CompletionParams none = params;
    none.sampling.logprobs = -1;
    runner::KvSequence again(f.model);
    bool any = false;
    auto plain = runner::complete(again, &f.tok, f.prompt, none, [&](const runner::Piece& p) {
        any = any || !p.logprobs.empty();
        return true;
    });
    REQUIRE(plain.ok());
    CHECK_FALSE(any);
    CHECK(plain->ids == done->ids);
}
