// The corpus through our tokenizer against two references, from the same tokenizer.json files:
// Hugging Face `tokenizers` (goldens made by tools/make_tokenizer_golden.py) and transformers.js
// (@lenml/tokenizers, run now by tools/tokenizer_ref.mjs from the npm cache tools/install-deps fills).
// Where the references disagree, tests/fixtures/tokenizer/disagreements.json says which we follow;
// each entry is checked to still be a real disagreement.
#include <doctest/doctest.h>

#include "runner/tokenizer/stream_decoder.h"
#include "runner/tokenizer/tokenizer.h"
#include "runner/tokenizer/utf8.h"
#include "support/digest.h"
#include "support/run_process.h"
#include "support/temp_tree.h"
#include "tokenizer/corpus.h"

using namespace test_tokenizer;
using tokenizer::TokenId;
using tokenizer::Tokenizer;

namespace {

const char* const models[] = {"llama3", "qwen3", "llama2", "gemma3", "deepseek_v3"};

Tokenizer load_model(const std::string& model) {
    auto tok = Tokenizer::load(model_dir(model) / "tokenizer.json", model_dir(model) / "tokenizer_config.json");
    REQUIRE_MESSAGE(tok.ok(), (tok.ok() ? "" : tok.error().message));
    return std::move(tok).value();
}

std::vector<TokenId> with_bos(TokenId bos, std::vector<TokenId> ids) {
    ids.insert(ids.begin(), bos);
    return ids;
}

// What we expect for encode(text, add_special_tokens=true): Hugging Face's, unless a recorded
// disagreement says the config's add_bos_token adds BOS in front of the plain ids.
std::vector<TokenId> expected_special(const nlohmann::json& table, const std::string& model, std::size_t i,
                                      const nlohmann::json& golden_case) {
    if (const auto d = disagreement(table, model, i, "ids_special"); d && d->contains("bos"))
        return with_bos(d->at("bos").get<TokenId>(), ids_of(golden_case.at("ids_plain")));
    return ids_of(golden_case.at("ids_special_raw"));
}

}  // namespace

TEST_CASE("tokenizer conformance: every model matches the Hugging Face tokenizers goldens") {
    const auto cases = read_corpus();
    const auto table = read_json(fixtures() / "disagreements.json");
    for (const std::string model : models) {
        CAPTURE(model);
        const auto tok = load_model(model);
        const auto golden = read_json(fixtures() / "golden" / (model + ".json"));
        REQUIRE(golden.at("cases").size() == cases.size());
        // The goldens were made from exactly the files the npm package installs.
        CHECK(test_support::sha256_hex(test_support::read_file(model_dir(model) / "tokenizer.json")) ==
              golden.at("tokenizer_json_sha256").get<std::string>());
        std::size_t plain_ok = 0, special_ok = 0, decode_ok = 0, transformers_ok = 0, transformers_skipped = 0;
        for (std::size_t i = 0; i < cases.size(); ++i) {
            CAPTURE(i);
            const auto& g = golden.at("cases")[i];
            const auto plain = tok.encode(cases[i], false);
            const auto special = tok.encode(cases[i], true);
            CHECK(plain == ids_of(g.at("ids_plain")));
            plain_ok += plain == ids_of(g.at("ids_plain"));
            const auto want_special = expected_special(table, model, i, g);
            CHECK(special == want_special);
            special_ok += special == want_special;

            const auto decoded = tok.decode(plain);
            REQUIRE(decoded.ok());
            CHECK(*decoded == g.at("decoded").get<std::string>());
            decode_ok += *decoded == g.at("decoded").get<std::string>();
            // Exact round trip, except where a recorded normalization changes the text.
            if (const auto d = disagreement(table, model, i, "round_trip"))
                CHECK_MESSAGE(*decoded != tokenizer::utf8_sanitize(cases[i]), "stale round_trip entry: " << d->dump());
            else
                CHECK(*decoded == tokenizer::utf8_sanitize(cases[i]));

            if (g.contains("ids_transformers")) {
                const auto ids_tf = ids_of(g.at("ids_transformers"));
                if (const auto d = disagreement(table, model, i, "ids_transformers")) {
                    CHECK_MESSAGE(ids_tf != want_special, "stale disagreement entry: " << d->dump());
                    ++transformers_skipped;
                } else {
                    CHECK(special == ids_tf);
                    transformers_ok += special == ids_tf;
                }
            }
        }
        MESSAGE(model << ": " << plain_ok << "/" << cases.size() << " plain, " << special_ok << "/" << cases.size()
                      << " with specials, " << decode_ok << "/" << cases.size() << " decodes match tokenizers "
                      << golden.at("tokenizers_version").get<std::string>() << "; " << transformers_ok
                      << " match transformers " << golden.value("transformers_version", "?") << " ("
                      << transformers_skipped << " recorded disagreements)");
    }
}

TEST_CASE("tokenizer conformance: every model matches transformers.js run now under node") {
    const auto npm = npm_dir();
    const auto pinned = read_json(std::filesystem::path(OAR_TOOLS) / "tokenizer-ref" / "package.json");
    const auto installed_manifest = npm / "node_modules" / "@lenml" / "tokenizers" / "package.json";
    REQUIRE_MESSAGE(
        std::filesystem::exists(installed_manifest),
        "transformers.js is not installed in " << npm.string() << ": run tools/install-deps (or set OAR_NPM_DIR)");
    REQUIRE_MESSAGE(read_json(installed_manifest).at("version") == pinned.at("dependencies").at("@lenml/tokenizers"),
                    npm.string() << " holds another @lenml/tokenizers version than tools/tokenizer-ref/package.json: "
                                    "run tools/install-deps");
    const auto node = find_program("node");
    REQUIRE_MESSAGE(!node.empty(), "node is not in PATH: run tools/install-deps");
    const auto cases = read_corpus();
    const auto table = read_json(fixtures() / "disagreements.json");
    for (const std::string model : models) {
        CAPTURE(model);
        const auto r = test_support::run_process(
            {node, std::string(OAR_TOOLS) + "/tokenizer_ref.mjs", "encode", "--npm-dir", npm.string(), "--model", model,
             "--tokenizer-dir", model_dir(model).string(), "--corpus", (fixtures() / "corpus.txt").string()});
        REQUIRE_MESSAGE(r.exit_code == 0, "tokenizer_ref.mjs failed: " << r.err);
        const auto js = nlohmann::json::parse(r.out);
        const auto golden = read_json(fixtures() / "golden" / (model + ".json"));
        REQUIRE(js.at("cases").size() == cases.size());
        const auto tok = load_model(model);
        std::size_t plain_ok = 0, special_ok = 0, decode_ok = 0, recorded = 0;
        for (std::size_t i = 0; i < cases.size(); ++i) {
            CAPTURE(i);
            const auto& j = js.at("cases")[i];
            const auto& g = golden.at("cases")[i];
            const auto plain = tok.encode(cases[i], false);
            const auto special = tok.encode(cases[i], true);
            const auto decoded = tok.decode(plain);
            REQUIRE(decoded.ok());
            const struct {
                const char* field;
                bool ours_match;
                bool hf_match;  // whether the references agree
                std::size_t* counter;
            } checks[] = {
                {"ids_plain", plain == ids_of(j.at("ids_plain")),
                 ids_of(g.at("ids_plain")) == ids_of(j.at("ids_plain")), &plain_ok},
                {"ids_special", special == ids_of(j.at("ids")),
                 expected_special(table, model, i, g) == ids_of(j.at("ids")), &special_ok},
                {"decoded", *decoded == j.at("decoded").get<std::string>(), g.at("decoded") == j.at("decoded"),
                 &decode_ok},
            };
            for (const auto& c : checks) {
                CAPTURE(c.field);
                const auto d = disagreement(table, model, i, c.field);
                bool against_js = false;
                if (d)
                    for (const auto& who : d->at("against")) against_js = against_js || who == "transformers.js";
                if (against_js) {
                    // We follow Hugging Face here; the entry must still describe a real difference.
                    CHECK_MESSAGE(!c.hf_match, "stale disagreement entry: " << d->dump());
                    ++recorded;
                } else {
                    CHECK(c.ours_match);
                    *c.counter += c.ours_match;
                }
            }
        }
        MESSAGE(model << ": " << plain_ok << "/" << cases.size() << " plain, " << special_ok << "/" << cases.size()
                      << " with specials, " << decode_ok << "/" << cases.size() << " decodes match transformers.js; "
                      << recorded << " recorded disagreements");
    }
}

TEST_CASE("tokenizer conformance: streaming decode gives the full decode in complete UTF-8 pieces") {
    const auto cases = read_corpus();
    for (const std::string model : {"llama3", "llama2"}) {  // one byte-level, one byte-fallback model
        CAPTURE(model);
        const auto tok = load_model(model);
        std::size_t held_back = 0;
        for (std::size_t i = 0; i < cases.size(); ++i) {
            CAPTURE(i);
            const auto ids = tok.encode(cases[i], true);
            tokenizer::StreamDecoder stream(tok);
            std::string joined;
            for (const auto id : ids) {
                const auto piece = stream.push(id);
                REQUIRE(piece.ok());
                CHECK(tokenizer::utf8_is_valid(*piece));
                held_back += piece->empty();
                joined += *piece;
            }
            const auto rest = stream.flush();
            REQUIRE(rest.ok());
            joined += *rest;
            CHECK(joined == *tok.decode(ids));
        }
        // The corpus has emoji and CJK split over byte tokens: something must have been held back.
        CHECK(held_back > 0);
    }
}
