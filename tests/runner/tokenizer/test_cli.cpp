// ollama-airllm tokenize / detokenize as users run them: sources, stdin, exit codes, messages.
#include <doctest/doctest.h>

#include "support/run_process.h"
#include "support/temp_tree.h"
#include "tokenizer/corpus.h"

using namespace test_tokenizer;
using test_support::run_process;
using test_support::TempTree;

namespace {

const std::string bin = OAR_OLLAMA_AIRLLM;

// Runs `command` through sh so stdin can be given; returns the result.
test_support::ProcessResult sh(const std::string& command, const std::vector<std::string>& env = {}) {
    return run_process({"/bin/sh", "-c", command}, env);
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

// An $OLLAMA_MODELS tree with library/tiny:latest whose json layers are llama2's tokenizer files.
void make_ollama_models(const TempTree& tree, bool with_names) {
    const std::string tok_digest(64, 'a'), cfg_digest(64, 'b');
    tree.copy(model_dir("llama2") / "tokenizer.json", "blobs/sha256-" + tok_digest);
    tree.copy(model_dir("llama2") / "tokenizer_config.json", "blobs/sha256-" + cfg_digest);
    nlohmann::json manifest = {
        {"schemaVersion", 2},
        {"layers",
         {{{"mediaType", "application/vnd.ollama.image.tensor"},
           {"digest", "sha256:" + std::string(64, 'c')},
           {"name", "w"}},
          {{"mediaType", "application/vnd.ollama.image.json"}, {"digest", "sha256:" + cfg_digest}},
          {{"mediaType", "application/vnd.ollama.image.json"}, {"digest", "sha256:" + tok_digest}}}}};
    if (with_names) {
        manifest["layers"][1]["name"] = "tokenizer_config.json";
        manifest["layers"][2]["name"] = "tokenizer.json";
    }
    tree.write("manifests/registry.ollama.ai/library/tiny/latest", manifest.dump());
}

}  // namespace

TEST_CASE("tokenizer cli: tokenize prints ids, detokenize gives the text back") {
    const auto folder = model_dir("llama2").string();
    const auto t = run_process({bin, "tokenize", "--tokenizer", folder, "--text", "Hello world"});
    CHECK(t.exit_code == 0);
    CHECK(t.out == "[1,22557,1526]\n");
    CHECK(t.err.empty());
    // A tokenizer.json file path finds tokenizer_config.json beside it; --no-special drops BOS.
    const auto file = run_process(
        {bin, "tokenize", "--tokenizer", folder + "/tokenizer.json", "--no-special", "--text", "Hello world"});
    CHECK(file.out == "[22557,1526]\n");
    // stdin, byte for byte (the newline is text too), then back.
    const auto piped = sh("printf 'Hi\\n日本' | " + bin + " tokenize --no-special --tokenizer " + quote(folder) +
                          " | " + bin + " detokenize --tokenizer " + quote(folder));
    CHECK(piped.exit_code == 0);
    CHECK(piped.out == "Hi\n日本");
    const auto skip = sh("echo '[1, 22557, 2]' | " + bin + " detokenize --skip-special --tokenizer " + quote(folder));
    CHECK(skip.out == "Hello");
}

TEST_CASE("tokenizer cli: an Ollama model name resolves through OLLAMA_MODELS manifests") {
    for (const bool with_names : {true, false}) {
        CAPTURE(with_names);
        TempTree tree;
        make_ollama_models(tree, with_names);
        const std::vector<std::string> env = {"OLLAMA_MODELS=" + tree.root().string()};
        for (const char* name : {"tiny", "tiny:latest", "library/tiny", "registry.ollama.ai/library/tiny:latest"}) {
            CAPTURE(name);
            const auto r = run_process({bin, "tokenize", "--tokenizer", name, "--text", "Hello world"}, env);
            CHECK(r.exit_code == 0);
            CHECK(r.out == "[1,22557,1526]\n");
        }
        const auto missing = run_process({bin, "tokenize", "--tokenizer", "other:7b", "--text", "x"}, env);
        CHECK(missing.exit_code == 1);
        CHECK(missing.err.find("manifests/registry.ollama.ai/library/other/7b") != std::string::npos);
    }
}

TEST_CASE("tokenizer cli: errors exit 1 or 2 and name the file and problem") {
    TempTree tree;
    tree.write("bad/tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
    tree.write("empty/readme", "");
    const auto folder = model_dir("llama2").string();
    const struct {
        std::string command;
        int code;
        std::string expect;
    } rows[] = {
        {bin, 2, "usage: ollama-airllm <command>"},
        {bin + " frobnicate", 2, "unknown command 'frobnicate'"},
        {bin + " tokenize --text x", 2, "--tokenizer is required"},
        {bin + " tokenize --tokenizer", 2, "unknown or incomplete argument '--tokenizer'"},
        {bin + " tokenize --tokenizer " + tree.root().string() + "/bad --text x", 1,
         tree.root().string() + "/bad/tokenizer.json: model.type: unsupported model type \"Unigram\""},
        {bin + " tokenize --tokenizer " + tree.root().string() + "/empty --text x", 1,
         tree.root().string() + "/empty: folder has no tokenizer.json"},
        {bin + " tokenize --tokenizer /nonexistent/tokenizer.json --text x", 1,
         "/nonexistent/tokenizer.json: no such file or folder"},
        {"echo 'not json' | " + bin + " detokenize --tokenizer " + folder, 2,
         "standard input: expected a JSON array of token ids"},
        {"echo '[1, \"a\"]' | " + bin + " detokenize --tokenizer " + folder, 2, "element 1 is not a token id (\"a\")"},
        {"echo '[99999999]' | " + bin + " detokenize --tokenizer " + folder, 2,
         "token id 99999999 is not in the vocabulary"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.command);
        const auto r = sh(row.command);
        CHECK(r.exit_code == row.code);
        CHECK_MESSAGE(r.err.find(row.expect) != std::string::npos, r.err);
    }
    CHECK(run_process({bin, "tokenize", "--help"}).exit_code == 0);
}
