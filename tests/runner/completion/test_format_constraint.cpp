// Structured output on a real tiny model and its byte-level tokenizer (tests/fixtures/models/qwen2-bias-tied):
// which tokens the constraint lets through, and complete()'s answers under a schema, greedy and sampled,
// parsed back and checked against it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "runner/completion/completion.h"
#include "runner/completion/format_constraint.h"
#include "runner/completion/json_schema_grammar.h"
#include "runner/engine/transformer.h"
#include "runner/model/hf_folder.h"
#include "runner/tokenizer/tiny.h"

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

const fs::path model_dir = fs::path(OAR_FIXTURES) / "models" / "qwen2-bias-tied";

tokenizer::Tokenizer load_tokenizer() {
    return std::move(tokenizer::Tokenizer::load(model_dir / "tokenizer.json", model_dir / "tokenizer_config.json"))
        .value();
}

runner::grammar::Grammar grammar_of(const char* format) {
    return std::move(runner::format_grammar(ordered_json::parse(format)).value()).value();
}

constexpr const char* person = R"({"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 6}, "age": {"type": "integer"},
    "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}}, "required": ["name", "age", "tags"]})";

// What the schema above asks, checked on the parsed answer.
void check_person(const std::string& text) {
    INFO(text);
    const json j = json::parse(text);  // throws, failing the test, when it is not JSON
    REQUIRE(j.is_object());
    CHECK(j.size() == 3);
    REQUIRE(j["name"].is_string());
    CHECK(j["name"].get<std::string>().size() <= 6 * 4);
    CHECK(j["age"].is_number_integer());
    REQUIRE(j["tags"].is_array());
    CHECK(j["tags"].size() <= 2);
    for (const auto& t : j["tags"]) CHECK((t == "a" || t == "b"));
    CHECK(text.find("\"name\"") < text.find("\"age\""));
}

}  // namespace

TEST_CASE("format constraint: only tokens whose text continues the grammar, an end only once it is whole") {
    const auto tok = load_tokenizer();
    const std::int32_t eos = 7;
    runner::FormatConstraint c(grammar_of(R"({"enum": ["ab", "abc"]})"), tok, {eos});
    const auto& pieces = tok.pieces();
    std::vector<float> logits(tok.vocab_size(), 1.0f);
    c.mask(logits);
    std::size_t allowed = 0;
    for (std::size_t id = 0; id < logits.size(); ++id) {
        if (std::isinf(logits[id])) continue;
        ++allowed;
        REQUIRE(pieces[id]);
        CHECK(pieces[id]->front() == '"');
        CHECK(c.allows(static_cast<std::int32_t>(id)));
    }
    CHECK(allowed > 0);
    CHECK_FALSE(c.allows(eos));
    const auto quote = tok.token_to_id("\"");
    REQUIRE(quote);
    c.accept(*quote);
    for (const char* part : {"a", "b"}) {
        const auto id = tok.token_to_id(part);
        REQUIRE(id);
        CHECK(c.allows(*id));
        c.accept(*id);
    }
    CHECK_FALSE(c.complete());
    c.accept(*quote);
    CHECK(c.complete());
    CHECK(c.allows(eos));
    // "ab" closed: nothing but the end may follow, and the mask says so.
    std::vector<float> after(tok.vocab_size(), 1.0f);
    c.mask(after);
    CHECK(std::count_if(after.begin(), after.end(), [](float l) { return !std::isinf(l); }) == 1);
    CHECK(after[eos] == 1.0f);
}

TEST_CASE("format constraint: a state met again masks as a fresh constraint does, each state with its own mask") {
    // Byte by byte through answers that come back to states: every letter of a string, and the same place in
    // a later item of a list (the second and third items' parses are alike), after a few other states or after
    // more states than the constraint keeps masks of (a long property name between the items' "k" values). Each mask
    // must equal that of a constraint that has seen the same bytes and never masked before.
    const auto tok = load_tokenizer();
    const std::string long_name = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";
    const std::pair<std::string, std::string> cases[] = {
        {R"({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})",
         R"({"name": "abab"})"},
        {R"({"type": "array", "items": {"type": "string"}})", R"(["ab", "cd", "ef"])"},
        {R"({"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}, ")" + long_name +
             R"(": {"type": "string"}}, "required": ["k", ")" + long_name + R"("]}})",
         R"([{"k": "a", ")" + long_name + R"(": "x"}, {"k": "b", ")" + long_name + R"(": "y"}, {"k": "c", ")" +
             long_name + R"(": "z"}])"},
    };
    const std::int32_t eos = 7;
    const auto& pieces = tok.pieces();
    bool came_back_in_memory = false, came_back_past_memory = false;
    for (const auto& [schema, text] : cases) {
        const auto g = grammar_of(schema.c_str());
        runner::FormatConstraint kept(g, tok, {eos});
        runner::grammar::Matcher states(g);
        std::vector<int> seen;
        std::vector<std::int32_t> so_far;
        for (std::size_t at = 0; at <= text.size(); ++at) {
            INFO("after " << text.substr(0, at));
            runner::FormatConstraint fresh(g, tok, {eos});
            for (const auto id : so_far) fresh.accept(id);
            std::vector<float> a(tok.vocab_size(), 1.0f), b(tok.vocab_size(), 1.0f);
            kept.mask(a);
            fresh.mask(b);
            CHECK(a == b);
            // Where this state was last met, and how many other states came between.
            const auto last = std::find(seen.rbegin(), seen.rend(), states.state());
            if (last != seen.rend() && last != seen.rbegin()) {
                std::vector<int> between(seen.rbegin(), last);
                std::sort(between.begin(), between.end());
                between.erase(std::unique(between.begin(), between.end()), between.end());
                came_back_in_memory = came_back_in_memory || between.size() < 32;
                came_back_past_memory = came_back_past_memory || between.size() > 32;
            }
            seen.push_back(states.state());
            if (at == text.size()) break;
            const auto id = std::find(pieces.begin(), pieces.end(), std::optional<std::string>(text.substr(at, 1)));
            REQUIRE(id != pieces.end());
            const auto token = static_cast<std::int32_t>(id - pieces.begin());
            kept.accept(token);
            CHECK(states.accept(text.substr(at, 1)));
            so_far.push_back(token);
        }
        CHECK(kept.complete());
    }
    CHECK(came_back_in_memory);
    CHECK(came_back_past_memory);
}

TEST_CASE("format constraint: a grammar no token can continue leaves the end of text, never an empty choice") {
    const auto tok = test_tokenizer::tiny(test_tokenizer::tiny_json());  // a..e and a few more: no "z"
    runner::grammar::Grammar g;
    g.set_root(g.add_rule({runner::grammar::literal("z")}));
    runner::FormatConstraint c(g, tok, {5});
    std::vector<float> logits(tok.vocab_size(), 1.0f);
    c.mask(logits);
    CHECK(std::count_if(logits.begin(), logits.end(), [](float l) { return !std::isinf(l); }) == 1);
    CHECK(logits[5] == 0.0f);
    CHECK_FALSE(c.allows(5));  // the end is the mask's way out, not a choice beside others
}

TEST_CASE("format constraint: a character the vocabulary spells only in byte tokens is written byte by byte") {
    // Byte-level vocabularies hold every byte; Llama 3's has no token for 龘, so its three bytes come one at
    // a time, each piece the raw byte (alone it would decode to U+FFFD).
    const auto tok = load_tokenizer();
    runner::FormatConstraint c(grammar_of(R"({"enum": ["龘"]})"), tok, {7});
    const std::string want = "\"龘\"";
    for (const char b : want) {
        const auto& pieces = tok.pieces();
        const auto id = std::find(pieces.begin(), pieces.end(), std::optional<std::string>(std::string(1, b)));
        REQUIRE(id != pieces.end());
        const auto token = static_cast<std::int32_t>(id - pieces.begin());
        CHECK(c.allows(token));
        c.accept(token);
    }
    CHECK(c.complete());
}

TEST_CASE("format constraint: a tiny random model answers in the schema, greedy and sampled") {
    auto source = std::move(runner::open_hf_folder(model_dir)).value();
    runner::Transformer model{*source, std::move(runner::bind_weights(*source)).value(), 512, 2};
    const auto tok = load_tokenizer();
    std::vector<std::int32_t> prompt;
    for (const auto id : tok.encode("A person as JSON:")) prompt.push_back(id);
    for (const float temperature : {0.0f, 1.0f, 1.5f}) {
        for (std::uint64_t seed = 1; seed <= (temperature > 0 ? 3u : 1u); ++seed) {
            runner::CompletionParams params;
            params.sampling.temperature = temperature;
            params.sampling.top_k = 0;
            params.sampling.top_p = 1;
            params.sampling.seed = seed;
            params.num_predict = 400;
            params.format = grammar_of(person);
            runner::KvSequence sequence(model);
            std::string text;
            auto done = runner::complete(sequence, &tok, prompt, params, [&](const runner::Piece& piece) {
                text += piece.text;
                return true;
            });
            REQUIRE_MESSAGE(done.ok(), (done.ok() ? "" : done.error().message));
            INFO("temperature " << temperature << ", seed " << seed);
            CHECK(done->finish == runner::Finish::eos);
            check_person(text);
        }
    }
}

TEST_CASE("format constraint: a format without the model's tokenizer is an error") {
    auto source = std::move(runner::open_hf_folder(model_dir)).value();
    runner::Transformer model{*source, std::move(runner::bind_weights(*source)).value(), 64, 2};
    runner::CompletionParams params;
    params.format = grammar_of(R"("json")");
    runner::KvSequence sequence(model);
    const std::vector<std::int32_t> prompt = {1, 2, 3};
    auto done = runner::complete(sequence, nullptr, prompt, params, [](const runner::Piece&) { return true; });
    REQUIRE_FALSE(done.ok());
    CHECK(done.error().message.find("tokenizer") != std::string::npos);
}
