// Malformed tokenizer.json and tokenizer_config.json: a clear error naming the file and the key, never
// a crash. Also replays the fuzzing corpus through the loader.
#include <doctest/doctest.h>

#include <filesystem>

#include "support/temp_tree.h"
#include "tokenizer/tiny.h"

using namespace test_tokenizer;
using tokenizer::Tokenizer;

TEST_CASE("tokenizer loader: malformed tokenizer.json gives an error naming file, key and problem") {
    const auto base = tiny_json();
    const auto with = [&](const char* pointer, nlohmann::json value) {
        auto j = base;
        j[nlohmann::json::json_pointer(pointer)] = std::move(value);
        return j.dump();
    };
    auto no_model = base;
    no_model.erase("model");
    const struct {
        std::string text;
        const char* expect;
    } rows[] = {
        {base.dump().substr(0, 60), "t.json: not valid JSON: parse error at line 1, column 61"},
        {"[]", "t.json: top level: expected an object, found array"},
        {no_model.dump(), "t.json: top level: missing key \"model\""},
        {with("/model/type", "WordPiece"), "t.json: model.type: unsupported model type \"WordPiece\""},
        {with("/model/type", "Unigram"), "unsupported model type \"Unigram\" (supported: BPE)"},
        {with("/model/vocab", nlohmann::json::array()),
         "t.json: model.vocab: expected an object of token → id, found array"},
        {with("/model/vocab/a", "one"), "t.json: model.vocab[\"a\"]: expected an integer, found string"},
        {with("/model/vocab/a", -5), "model.vocab[\"a\"]: token id -5 out of range"},
        {with("/model/merges/0", "b zz"), "t.json: model.merges[0]: merge token \"zz\" is not in model.vocab"},
        {with("/model/merges/0", "c e"), "t.json: model.merges[0]: merged token \"ce\" is not in model.vocab"},
        {with("/model/merges/1", "abc"), "model.merges[1]: expected \"left right\" (two tokens and one space)"},
        {with("/model/merges/1", 7),
         "model.merges[1]: expected a string \"left right\" or a pair of strings, found integer"},
        {with("/model/unk_token", "<nope>"), "model.unk_token: unk_token \"<nope>\" is not in model.vocab"},
        {with("/normalizer", {{"type", "Lowercase"}}), "normalizer.type: unsupported normalizer type \"Lowercase\""},
        {with("/normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKD"}}}}}),
         "normalizer.normalizers[0].type: unsupported normalizer type \"NFKD\""},
        {with("/pre_tokenizer", {{"type", "Whitespace"}}),
         "pre_tokenizer.type: unsupported pre-tokenizer type \"Whitespace\""},
        {with("/pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "(["}}}, {"behavior", "Isolated"}}),
         "pre_tokenizer.pattern.Regex: regex \"([\" does not compile"},
        {with("/pre_tokenizer", {{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Sideways"}}),
         "pre_tokenizer.behavior: unknown split behavior \"Sideways\""},
        {with("/decoder", {{"type", "WordPiece"}}), "decoder.type: unsupported decoder type \"WordPiece\""},
        {with("/post_processor", {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<s>"}}}}}}}),
         "post_processor.single[0].SpecialToken.id: special token \"<s>\" is not defined in special_tokens"},
        {with("/added_tokens", {{{"id", "x"}, {"content", "<s>"}}}),
         "added_tokens[0].id: expected an integer, found string"},
        {with("/added_tokens", nlohmann::json::object()), "added_tokens: expected an array, found object"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.expect);
        const auto r = Tokenizer::parse(row.text, "t.json");
        REQUIRE_FALSE(r.ok());
        CHECK_MESSAGE(r.error().message.find(row.expect) != std::string::npos, r.error().message);
    }
}

TEST_CASE("tokenizer loader: tokenizer_config.json problems name that file") {
    const auto json = tiny_json().dump();
    const struct {
        const char* config;
        const char* expect;
    } rows[] = {
        {"{", "c.json: not valid JSON"},
        {R"({"add_bos_token": true})", "c.json: add_bos_token: is true but bos_token is not set"},
        {R"({"add_bos_token": true, "bos_token": "<zz>"})", "c.json: bos_token: \"<zz>\" is not in the vocabulary"},
        {R"({"add_bos_token": "yes", "bos_token": "a"})", "c.json: add_bos_token: expected a boolean, found string"},
        {R"({"add_eos_token": true, "eos_token": 5})",
         "c.json: eos_token: expected a string, an AddedToken object or null"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.config);
        const auto r = Tokenizer::parse(json, "t.json", row.config, "c.json");
        REQUIRE_FALSE(r.ok());
        CHECK_MESSAGE(r.error().message.find(row.expect) != std::string::npos, r.error().message);
    }
    // And the working case: BOS/EOS from the config around the text.
    const auto ok = Tokenizer::parse(json, "t.json", R"({"add_bos_token": true, "bos_token": {"content": "e"},
                                                        "add_eos_token": true, "eos_token": "d"})",
                                     "c.json");
    REQUIRE(ok.ok());
    CHECK(ok->encode("ab") == std::vector<tokenizer::TokenId>{5, 6, 4});
    CHECK(ok->encode("ab", false) == std::vector<tokenizer::TokenId>{6});
}

TEST_CASE("tokenizer loader: missing files are named") {
    const auto r = Tokenizer::load("/nonexistent/tokenizer.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "/nonexistent/tokenizer.json: cannot open (no such file)");
}

TEST_CASE("tokenizer loader: the fuzzing corpus loads or fails cleanly") {
    std::size_t files = 0, loaded = 0;
    for (const auto& entry : std::filesystem::directory_iterator(OAR_FUZZ_CORPUS)) {
        if (!entry.is_regular_file()) continue;
        ++files;
        const auto text = test_support::read_file(entry.path());
        const auto r = Tokenizer::parse(text, entry.path().filename().string());
        if (r.ok()) {
            ++loaded;
            // A loaded tokenizer must also encode and decode without trouble.
            const auto ids = r->encode("Hello wörld 123 <s>\xFF", true);
            (void)r->decode(ids);
        } else {
            CHECK(r.error().message.rfind(entry.path().filename().string() + ": ", 0) == 0);
        }
    }
    CHECK(files >= 10);
    MESSAGE(files << " corpus files, " << loaded << " load");
}
