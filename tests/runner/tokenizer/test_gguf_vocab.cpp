// Tokenizers from GGUF metadata. Llama 3's and Qwen3's tokenizer.json (the npm packages the conformance
// tests read) are turned into tokenizer.ggml.* values as llama.cpp's convert_hf_to_gguf.py writes them
// (ids in order, added tokens as CONTROL or USER_DEFINED, the merges, the pre-tokenizer's name), and the
// corpus through the tokenizer rebuilt from them must give Hugging Face's golden ids. Qwen's tokenizer.json
// also NFC-normalizes, which llama.cpp does not: those cases are checked on their NFC form.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "runner/tokenizer/gguf_vocab.h"
#include "runner/tokenizer/normalizer.h"
#include "runner/tokenizer/spm_merges.h"
#include "support/temp_tree.h"
#include "tokenizer/corpus.h"

using namespace test_tokenizer;

namespace {

runner::GgufValue strings(std::vector<std::string> v) {
    runner::GgufValue value;
    value.type = runner::GgufType::string;
    value.is_array = true;
    value.strings = std::move(v);
    return value;
}

runner::GgufValue string(std::string s) {
    runner::GgufValue value;
    value.type = runner::GgufType::string;
    value.strings = {std::move(s)};
    return value;
}

runner::GgufValue integers(std::vector<std::int64_t> v, bool array = true) {
    runner::GgufValue value;
    value.type = runner::GgufType::int32;
    value.is_array = array;
    value.integers = std::move(v);
    return value;
}

// convert_hf_to_gguf.py's get_vocab_base, for a tokenizer.json.
runner::GgufHeader converted(const std::string& model, const std::string& pre, bool add_bos) {
    const auto j = read_json(model_dir(model) / "tokenizer.json");
    std::map<std::int64_t, std::string> by_id;
    for (const auto& [token, id] : j.at("model").at("vocab").items()) by_id[id.get<std::int64_t>()] = token;
    std::map<std::int64_t, bool> added;  // id -> special
    for (const auto& a : j.at("added_tokens")) {
        by_id[a.at("id").get<std::int64_t>()] = a.at("content").get<std::string>();
        added[a.at("id").get<std::int64_t>()] = a.at("special").get<bool>();
    }
    std::vector<std::string> tokens;
    std::vector<std::int64_t> types;
    for (std::int64_t id = 0; id <= by_id.rbegin()->first; ++id) {
        const auto it = by_id.find(id);
        if (it == by_id.end()) {
            tokens.push_back("[PAD" + std::to_string(id) + "]");
            types.push_back(5);  // UNUSED
            continue;
        }
        tokens.push_back(it->second);
        const auto a = added.find(id);
        types.push_back(a == added.end() ? 1 : a->second ? 3 : 4);  // NORMAL, CONTROL, USER_DEFINED
    }
    std::vector<std::string> merges;
    for (const auto& m : j.at("model").at("merges"))
        merges.push_back(m.is_string() ? m.get<std::string>()
                                       : m[0].get<std::string>() + " " + m[1].get<std::string>());
    runner::GgufHeader h;
    h.metadata["tokenizer.ggml.model"] = string("gpt2");
    h.metadata["tokenizer.ggml.pre"] = string(pre);
    h.metadata["tokenizer.ggml.tokens"] = strings(tokens);
    h.metadata["tokenizer.ggml.token_type"] = integers(types);
    h.metadata["tokenizer.ggml.merges"] = strings(merges);
    if (add_bos) {
        const auto bos = std::find(tokens.begin(), tokens.end(), "<|begin_of_text|>") - tokens.begin();
        h.metadata["tokenizer.ggml.bos_token_id"] = integers({bos}, false);
        h.metadata["tokenizer.ggml.add_bos_token"] = integers({1}, false);
    }
    return h;
}

void check_corpus(const std::string& model, const std::string& pre, bool add_bos, bool reference_nfc) {
    CAPTURE(model);
    auto tok = tokenizer::load_gguf_tokenizer(converted(model, pre, add_bos), model + ".gguf");
    REQUIRE_MESSAGE(tok.ok(), (tok.ok() ? "" : tok.error().message));
    const auto reference = tokenizer::Tokenizer::load(model_dir(model) / "tokenizer.json");
    REQUIRE(reference.ok());
    const auto cases = read_corpus();
    const auto golden = read_json(fixtures() / "golden" / (model + ".json"));
    std::size_t nfc_cases = 0;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(i);
        const auto& g = golden.at("cases")[i];
        const std::string nfc = tokenizer::nfc(cases[i]);
        if (reference_nfc && nfc != cases[i]) {
            // llama.cpp tokenizes the text as it is; Qwen's tokenizer.json normalizes it first.
            ++nfc_cases;
            CHECK(tok->encode(nfc, false) == reference->encode(cases[i], false));
            continue;
        }
        CHECK(tok->encode(cases[i], false) == ids_of(g.at("ids_plain")));
        auto special = ids_of(g.at("ids_plain"));
        if (add_bos) special.insert(special.begin(), tok->bos_ids().at(0));
        CHECK(tok->encode(cases[i], true) == special);
        const auto decoded = tok->decode(ids_of(g.at("ids_plain")));
        REQUIRE(decoded.ok());
        CHECK(*decoded == g.at("decoded").get<std::string>());
    }
    CHECK(nfc_cases < cases.size() / 4);
    if (reference_nfc) CHECK(nfc_cases > 0);  // the corpus does hold text NFC changes
}

}  // namespace

TEST_CASE("GGUF vocabulary: Llama 3 (llama-bpe) tokenizes the corpus as Hugging Face does") {
    check_corpus("llama3", "llama-bpe", true, false);
}

TEST_CASE("GGUF vocabulary: Qwen3 (qwen2) tokenizes the corpus as Hugging Face does") {
    check_corpus("qwen3", "qwen2", false, true);
}

// tests/fixtures/gguf/spm-vocab.gguf: a SentencePiece BPE model trained in Llama's settings by the
// sentencepiece package and written as llama.cpp's converter writes one (tools/reference/make_spm_vocab.py);
// spm-vocab.json: SentencePiece's own ids and decodings for the corpus.
TEST_CASE("GGUF vocabulary: a SentencePiece vocabulary tokenizes the corpus as SentencePiece does") {
    const auto dir = std::filesystem::path(OAR_FIXTURES) / "gguf";
    const std::string data = test_support::read_file(dir / "spm-vocab.gguf");
    const auto header = runner::parse_gguf({reinterpret_cast<const std::byte*>(data.data()), data.size()}, "spm.gguf");
    REQUIRE(header.ok());
    auto tok = tokenizer::load_gguf_tokenizer(*header, "spm.gguf");
    REQUIRE_MESSAGE(tok.ok(), (tok.ok() ? "" : tok.error().message));
    const auto golden = read_json(dir / "spm-vocab.json");
    const auto cases = read_corpus();
    REQUIRE(golden.at("cases").size() == cases.size());
    std::size_t checked = 0;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(i);
        const auto& g = golden.at("cases")[i];
        if (g.is_null()) continue;  // not UTF-8: SentencePiece takes only text
        // SentencePiece reads "<s>" in text as characters; llama.cpp and Hugging Face as the control token.
        if (cases[i].find("<s>") != std::string::npos || cases[i].find("</s>") != std::string::npos) continue;
        ++checked;
        const auto ids = ids_of(g.at("ids"));
        CHECK(tok->encode(cases[i], false) == ids);
        auto with_bos = ids;
        with_bos.insert(with_bos.begin(), 1);  // tokenizer.ggml.add_bos_token, <s>
        CHECK(tok->encode(cases[i], true) == with_bos);
        const auto decoded = tok->decode(ids);
        REQUIRE(decoded.ok());
        CHECK(*decoded == g.at("decoded").get<std::string>());
    }
    CHECK(checked + 5 >= cases.size());
}

// tests/fixtures/tokenizer/llamacpp-ids.json: llama.cpp's own tokenizer (llama-cpp-python 0.3.36, vocabulary only,
// no BOS, special tokens parsed) over the corpus, through the same three vocabularies
// (tools/reference/make_llamacpp_token_ids.py).
TEST_CASE("GGUF vocabulary: Llama 3, Qwen3 and SentencePiece vocabularies tokenize the corpus id for id as llama.cpp") {
    const auto reference = read_json(fixtures() / "llamacpp-ids.json").at("models");
    const auto cases = read_corpus();
    const std::string spm_data =
        test_support::read_file(std::filesystem::path(OAR_FIXTURES) / "gguf" / "spm-vocab.gguf");
    const auto spm_header =
        runner::parse_gguf({reinterpret_cast<const std::byte*>(spm_data.data()), spm_data.size()}, "spm.gguf");
    REQUIRE(spm_header.ok());
    struct Vocab {
        const char* name;
        runner::GgufHeader header;
    };
    const Vocab vocabs[] = {{"llama3", converted("llama3", "llama-bpe", true)},
                            {"qwen3", converted("qwen3", "qwen2", false)},
                            {"spm", *spm_header}};
    for (const auto& [name, header] : vocabs) {
        CAPTURE(name);
        auto tok = tokenizer::load_gguf_tokenizer(header, std::string(name) + ".gguf");
        REQUIRE_MESSAGE(tok.ok(), (tok.ok() ? "" : tok.error().message));
        const auto& ids = reference.at(name);
        REQUIRE(ids.size() == cases.size());
        std::size_t checked = 0;
        for (std::size_t i = 0; i < cases.size(); ++i) {
            CAPTURE(i);
            if (ids[i].is_null()) continue;  // not UTF-8
            // This llama.cpp makes Qwen's "</s>", a NORMAL token of its vocabulary, a control token (it
            // promotes some control-looking texts, a heuristic it calls "probably a bug in the model"), and
            // so reads it in text as one token; the runner keeps the file's types, as Hugging Face does.
            if (std::string(name) == "qwen3" && cases[i].find("</s>") != std::string::npos) continue;
            ++checked;
            CHECK(tok->encode(cases[i], false) == ids_of(ids[i]));
        }
        CHECK(checked + 5 >= cases.size());
    }
}

TEST_CASE("GGUF vocabulary: SentencePiece merges rank a piece's splits by its score, then by id") {
    // "bc" scores above "ab" although its id is higher: the score decides. "abc" splits two ways, tied on
    // score with "xy": the joined id, then the left piece's, order them. Control, unknown and byte pieces
    // are never joined into.
    const std::vector<std::string> pieces = {"<unk>", "a", "b", "c",  "ab",     "bc",
                                             "abc",   "x", "y", "xy", "<0x41>", "<s>"};
    const std::vector<double> scores = {0, -10, -10, -10, -2, -1, -3, -10, -10, -3, 0, 0};
    const std::vector<std::int64_t> types = {2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6, 3};
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"b", "c"}, {"a", "b"}, {"a", "bc"}, {"ab", "c"}, {"x", "y"}};
    CHECK(tokenizer::spm_merges(pieces, scores, types) == expected);
}

TEST_CASE("GGUF vocabulary: what it cannot tokenize is an error naming the file and the key") {
    auto h = converted("qwen3", "qwen2", false);
    const auto error_of = [](const runner::GgufHeader& header) {
        const auto r = tokenizer::load_gguf_tokenizer(header, "m.gguf");
        REQUIRE_FALSE(r.ok());
        return r.error().message;
    };
    auto spm = h;
    spm.metadata["tokenizer.ggml.model"] = string("llama");  // SentencePiece, without scores
    CHECK(error_of(spm) ==
          "m.gguf: tokenizer.ggml.scores does not give one score per token (a SentencePiece "
          "vocabulary needs them)");
    auto nan = spm;
    runner::GgufValue scores;
    scores.type = runner::GgufType::float32;
    scores.is_array = true;
    scores.reals.assign(h.metadata["tokenizer.ggml.tokens"].strings.size(), -1.0);
    scores.reals[9] = std::nan("");
    nan.metadata["tokenizer.ggml.scores"] = scores;
    CHECK(error_of(nan) == "m.gguf: tokenizer.ggml.scores[9] is not a finite number");
    auto t5 = h;
    t5.metadata["tokenizer.ggml.model"] = string("t5");
    CHECK(error_of(t5) ==
          "m.gguf: tokenizer.ggml.model is \"t5\": only byte-level BPE (\"gpt2\": Llama 3, Qwen) and "
          "SentencePiece BPE (\"llama\": Llama 2, Mistral) vocabularies are supported");
    auto pre = h;
    pre.metadata["tokenizer.ggml.pre"] = string("tekken");
    CHECK(error_of(pre).find(
              "m.gguf: tokenizer.ggml.pre \"tekken\" is not a pre-tokenizer the runner knows (llama-bpe,") == 0);
    auto none = h;
    none.metadata.erase("tokenizer.ggml.model");
    CHECK(error_of(none).find("no tokenizer.ggml.model") != std::string::npos);
    auto types = h;
    types.metadata["tokenizer.ggml.token_type"] = integers({1, 1});
    CHECK(error_of(types) == "m.gguf: tokenizer.ggml.token_type does not give one type per token");
    auto twice = h;
    twice.metadata["tokenizer.ggml.tokens"].strings[5] = twice.metadata["tokenizer.ggml.tokens"].strings[4];
    CHECK(error_of(twice).find("twice (ids 4 and 5)") != std::string::npos);
    auto bos = h;
    bos.metadata["tokenizer.ggml.add_bos_token"] = integers({1}, false);
    CHECK(error_of(bos) ==
          "m.gguf: tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id names no token");
    auto bytes = h;
    bytes.metadata["tokenizer.ggml.tokens"].strings[7] = "\xff\xfe";
    CHECK(error_of(bytes) == "m.gguf: tokenizer.ggml.tokens[7] is not valid UTF-8");
    auto merge = h;
    merge.metadata["tokenizer.ggml.merges"].strings[2] = "a \xc3";
    CHECK(error_of(merge) == "m.gguf: tokenizer.ggml.merges[2] is not valid UTF-8");
}

TEST_CASE("GGUF vocabulary: the fuzzing corpus gives a tokenizer or an error naming the file, never a throw") {
    // tests/fuzz/gguf_corpus, grown by fuzz_gguf and fuzz_gguf_model (one input once made json's dump throw
    // on a token that is not UTF-8).
    std::size_t tokenizers = 0, refused = 0;
    for (const auto& entry : std::filesystem::directory_iterator(OAR_GGUF_CORPUS)) {
        CAPTURE(entry.path().string());
        const std::string data = test_support::read_file(entry.path());
        const auto header =
            runner::parse_gguf({reinterpret_cast<const std::byte*>(data.data()), data.size()}, "c.gguf");
        if (!header) continue;
        const auto tok = tokenizer::load_gguf_tokenizer(*header, "c.gguf");
        if (tok) {
            ++tokenizers;
            CHECK(tok->decode(tok->encode("Hello, world! 123")).ok());
        } else {
            ++refused;
            CHECK(tok.error().message.rfind("c.gguf", 0) == 0);
        }
    }
    CHECK(tokenizers >= 3);  // the three vocabulary seeds
    CHECK(refused > 0);
}
