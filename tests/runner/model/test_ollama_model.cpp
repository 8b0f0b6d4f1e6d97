// Models in Ollama's store ($OLLAMA_MODELS): a manifest, one safetensors blob per tensor and JSON blobs
// for the config files, laid out as `ollama create --experimental` writes them (Ollama v0.32.15).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "runner/model/ollama_manifest.h"
#include "runner/support/ollama_store.h"
#include "runner/support/prompt_ids.h"
#include "support/free_port.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;
using test_support::import_model;
using test_support::run_process;
using test_support::TempTree;

namespace {

const fs::path models = fs::path(OAR_FIXTURES) / "models";

}  // namespace

TEST_CASE("ollama store: a model by name runs with the same greedy tokens as its folder") {
    TempTree store;
    import_model(store, models / "llama-gqa4-llama3rope");
    const auto ref = nlohmann::json::parse(test_support::read_file(models / "llama-gqa4-llama3rope/reference.json"));
    const auto r = run_process({OAR_OLLAMA_AIRLLM, "generate", "tiny", "--prompt-ids",
                                test_support::ids_csv(ref["prompt_ids"]), "-n", "32", "--temperature", "0", "--json"},
                               {"OLLAMA_MODELS=" + store.root().string()});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(nlohmann::json::parse(r.out)["ids"] == ref["greedy_ids"]);

    // The tokenizer comes from the model's JSON layers too.
    const auto text = run_process({OAR_OLLAMA_AIRLLM, "generate", "library/tiny:latest", "-p", "The quick brown fox",
                                   "-n", "4", "--temperature", "0", "--json"},
                                  {"OLLAMA_MODELS=" + store.root().string()});
    REQUIRE_MESSAGE(text.exit_code == 0, text.err);
    CHECK(nlohmann::json::parse(text.out)["prompt_tokens"].get<int>() > 2);
    const auto info = run_process({OAR_OLLAMA_AIRLLM, "info", "tiny"}, {"OLLAMA_MODELS=" + store.root().string()});
    CHECK(info.out.find("Ollama model library/tiny:latest") != std::string::npos);
}

TEST_CASE("ollama store: a pulled GGUF model runs by name, its tokenizer from the GGUF's vocabulary") {
    TempTree store;
    const fs::path gguf = fs::path(OAR_FIXTURES) / "gguf-models/llama-q4_k_m.gguf";
    test_support::import_gguf(store, gguf);
    // The runner's default path: quantized products on 8-bit activations.
    const auto refs = nlohmann::json::parse(test_support::read_file(gguf.parent_path() / "reference-int8.json"));
    const auto& ref = refs["llama-q4_k_m"];
    const std::vector<std::string> env = {"OLLAMA_MODELS=" + store.root().string()};
    const auto r = run_process({OAR_OLLAMA_AIRLLM, "generate", "tiny", "--prompt-ids",
                                test_support::ids_csv(ref["prompt_ids"]), "-n", "8", "--temperature", "0", "--json"},
                               env);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(nlohmann::json::parse(r.out)["ids"] == ref["greedy_ids"]);

    // Text in: the vocabulary inside the GGUF, BOS first as the file asks (its id is 317).
    const auto ids = run_process({OAR_OLLAMA_AIRLLM, "tokenize", "--tokenizer", "tiny", "--text", "The quick"}, env);
    REQUIRE_MESSAGE(ids.exit_code == 0, ids.err);
    const auto tokens = nlohmann::json::parse(ids.out);
    REQUIRE(tokens.size() >= 3);
    CHECK(tokens[0] == 317);
    const auto same_file =
        run_process({OAR_OLLAMA_AIRLLM, "tokenize", "--tokenizer", gguf.string(), "--text", "The quick"});
    CHECK(same_file.out == ids.out);
    const auto text = run_process(
        {OAR_OLLAMA_AIRLLM, "generate", "tiny", "-p", "The quick brown fox", "-n", "4", "--temperature", "0", "--json"},
        env);
    REQUIRE_MESSAGE(text.exit_code == 0, text.err);
    CHECK(nlohmann::json::parse(text.out)["prompt_tokens"].get<int>() > 2);
    const auto info = run_process({OAR_OLLAMA_AIRLLM, "info", "tiny"}, env);
    CHECK(info.out.find("Q4_K") != std::string::npos);
}

TEST_CASE("ollama store: missing models, blobs and configs are clear errors") {
    TempTree store;
    import_model(store, models / "qwen2-bias-tied");
    const std::vector<std::string> env = {"OLLAMA_MODELS=" + store.root().string()};
    const auto missing = run_process({OAR_OLLAMA_AIRLLM, "generate", "nosuch", "--prompt-ids", "1"}, env);
    CHECK(missing.exit_code == 2);
    CHECK(missing.err.find("no Ollama model (looked for " +
                           (store.root() / "manifests/registry.ollama.ai/library/nosuch/latest").string()) !=
          std::string::npos);

    // Delete one tensor blob.
    const auto manifest = nlohmann::json::parse(
        test_support::read_file(store.root() / "manifests/registry.ollama.ai/library/tiny/latest"));
    const std::string digest = manifest["layers"][0]["digest"].get<std::string>().substr(7);
    fs::remove(store.root() / "blobs" / ("sha256-" + digest));
    const auto blob = run_process({OAR_OLLAMA_AIRLLM, "generate", "tiny", "--prompt-ids", "1"}, env);
    CHECK(blob.exit_code == 2);
    CHECK(blob.err.find("sha256-" + digest + ": cannot open") != std::string::npos);
    CHECK(blob.err.find("tensor blob " + manifest["layers"][0]["name"].get<std::string>()) != std::string::npos);

    // A digest of the wrong JSON type names the manifest and the key, and the runner, whose serving
    // threads are running by then, ends with one error line instead of std::terminate.
    auto numeric = manifest;
    numeric["layers"][0]["digest"] = 12345;
    store.write("manifests/registry.ollama.ai/library/tiny/latest", numeric.dump());
    for (const auto& command :
         {std::vector<std::string>{OAR_OLLAMA_AIRLLM, "generate", "tiny", "--prompt-ids", "1"},
          {OAR_OLLAMA_AIRLLM, "runner", "--model", "tiny", "--port", std::to_string(test_support::free_port())}}) {
        const auto r = run_process(command, env);
        CHECK(r.exit_code != 0);
        CHECK(r.exit_code < 128);
        CHECK(r.err.find("library/tiny/latest: a layer's \"digest\" is not a string\n") != std::string::npos);
    }

    TempTree gguf_like;
    import_model(gguf_like, models / "qwen2-bias-tied", {.with_config_json = false});
    const auto no_config = run_process({OAR_OLLAMA_AIRLLM, "generate", "tiny", "--prompt-ids", "1"},
                                       {"OLLAMA_MODELS=" + gguf_like.root().string()});
    CHECK(no_config.exit_code == 2);
    CHECK(no_config.err.find("has neither a model (GGUF) layer nor a config.json layer") != std::string::npos);
}

TEST_CASE("ollama store: links out of manifests/ or blobs/ are refused, a relocated blobs/ folder is fine") {
    TempTree store;
    import_model(store, models / "qwen2-bias-tied");
    const std::vector<std::string> env = {"OLLAMA_MODELS=" + store.root().string()};
    const auto generate = [&] {
        return run_process({OAR_OLLAMA_AIRLLM, "generate", "tiny", "--prompt-ids", "1"}, env);
    };
    TempTree elsewhere;
    elsewhere.write("secret", "not a manifest: the runner must not read this\n");

    // The whole blobs/ folder moved to another drive and linked back: still the models folder's.
    fs::rename(store.root() / "blobs", elsewhere.root() / "blobs");
    fs::create_directory_symlink(elsewhere.root() / "blobs", store.root() / "blobs");
    const auto relocated = generate();
    CHECK_MESSAGE(relocated.exit_code == 0, relocated.err);

    // One blob linked out of blobs/.
    const auto manifest_path = store.root() / "manifests/registry.ollama.ai/library/tiny/latest";
    const auto manifest = nlohmann::json::parse(test_support::read_file(manifest_path));
    const auto blob =
        elsewhere.root() / "blobs" / ("sha256-" + manifest["layers"][0]["digest"].get<std::string>().substr(7));
    fs::remove(blob);
    fs::create_symlink(elsewhere.root() / "secret", blob);
    const auto blob_out = generate();
    CHECK(blob_out.exit_code == 2);
    CHECK(blob_out.err.find("leads out of " + (store.root() / "blobs").string() + " (to " +
                            (elsewhere.root() / "secret").string() + "); refusing to read it") != std::string::npos);

    // The manifest itself linked out of manifests/.
    fs::remove(manifest_path);
    fs::create_symlink(elsewhere.root() / "secret", manifest_path);
    const auto manifest_out = generate();
    CHECK(manifest_out.exit_code == 2);
    CHECK(manifest_out.err.find("refusing to read it") != std::string::npos);
    CHECK(manifest_out.err.find("not a manifest") == std::string::npos);
}

TEST_CASE("ollama store: a blob whose content is not its digest does not run, checked once and again when changed") {
    TempTree store, cache;
    import_model(store, models / "qwen2-bias-tied");
    const std::vector<std::string> env = {"OLLAMA_MODELS=" + store.root().string(),
                                          "AIRLLM_CACHE_DIR=" + cache.root().string()};
    const auto generate = [&] {
        return run_process({OAR_OLLAMA_AIRLLM, "generate", "tiny", "--prompt-ids", "1"}, env);
    };
    const auto first = generate();
    REQUIRE_MESSAGE(first.exit_code == 0, first.err);
    CHECK(first.err.find("checking blob digests 100%") != std::string::npos);
    const auto second = generate();
    CHECK(second.exit_code == 0);
    CHECK(second.err.find("checking blob digests") == std::string::npos);  // remembered

    // A tensor changed past the safetensors header, as a tampered blob would be: it still parses.
    const auto manifest = nlohmann::json::parse(
        test_support::read_file(store.root() / "manifests/registry.ollama.ai/library/tiny/latest"));
    const auto digest = manifest["layers"][0]["digest"].get<std::string>().substr(7);
    const auto blob = store.root() / "blobs" / ("sha256-" + digest);
    auto bytes = test_support::read_file(blob);
    bytes.back() = static_cast<char>(bytes.back() ^ 1);
    store.write("blobs/sha256-" + digest, bytes);
    const auto tampered = generate();
    CHECK(tampered.exit_code == 2);
    CHECK(tampered.err.find(blob.string() + ": content has digest sha256:") != std::string::npos);
    CHECK(tampered.err.find("not the one it is named by (blob of " +
                            manifest["layers"][0]["name"].get<std::string>()) != std::string::npos);

    const auto verify = run_process({OAR_OLLAMA_AIRLLM, "verify", "tiny"}, env);
    CHECK(verify.exit_code == 1);
    CHECK(verify.err.find("not the one it is named by") != std::string::npos);
    bytes.back() = static_cast<char>(bytes.back() ^ 1);
    store.write("blobs/sha256-" + digest, bytes);
    const auto repaired = run_process({OAR_OLLAMA_AIRLLM, "verify", "tiny"}, env);
    CHECK(repaired.exit_code == 0);
    CHECK(repaired.out == "tiny: every blob matches its digest\n");
    CHECK(run_process({OAR_OLLAMA_AIRLLM, "verify", (models / "qwen2-bias-tied").string()}, env).exit_code == 2);
}

TEST_CASE("ollama manifest: its layers, or the file and the problem, and a digest is only lowercase hex") {
    const std::string hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const auto layers = runner::parse_ollama_manifest(
        R"({"layers": [{"mediaType": "application/vnd.ollama.image.tensor", "digest": "sha256:)" + hex +
            R"(", "size": 4160, "name": "model.norm.weight"}, {"digest": "sha256:)" + hex + R"("}]})",
        "m");
    REQUIRE(layers.ok());
    REQUIRE(layers->size() == 2);
    CHECK((*layers)[0].media_type == runner::ollama_tensor_media_type);
    CHECK((*layers)[0].name == "model.norm.weight");
    CHECK((*layers)[0].digest_hex == hex);
    CHECK((*layers)[0].size == 4160);
    CHECK((*layers)[1].name.empty());

    const std::string upper = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
    const std::string dotted = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc../";
    for (const auto& [text, message] : {
             std::pair<std::string, std::string>{"{", "m: not valid JSON"},
             {R"({"layers": {}})", "m: no \"layers\" array"},
             {R"({"layers": [1]})", "m: a layer is not an object"},
             {R"({"layers": [{"name": 1}]})", "m: a layer's \"name\" is not a string"},
             {R"({"layers": [{"digest": "sha256:)" + upper + R"("}]})", "m: layer digest \"sha256:" + upper},
             {R"({"layers": [{"digest": "sha256:)" + dotted + R"("}]})", "is not sha256:<64 lowercase hex>"},
             {R"({"layers": [{"digest": "md5:abc"}]})", "is not sha256:<64 lowercase hex>"},
         }) {
        CAPTURE(text);
        const auto r = runner::parse_ollama_manifest(text, "m");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find(message) != std::string::npos);
    }
}

TEST_CASE("ollama manifest: the fuzzing corpus parses into hex digests or fails naming the manifest") {
    int ok = 0, failed = 0;
    for (const auto& entry : fs::directory_iterator(OAR_MANIFEST_CORPUS)) {
        CAPTURE(entry.path().filename().string());
        const auto r = runner::parse_ollama_manifest(test_support::read_file(entry.path()), "manifest");
        if (r.ok()) {
            ++ok;
            for (const auto& layer : *r)
                CHECK(layer.digest_hex.find_first_not_of("0123456789abcdef") == std::string::npos);
        } else {
            ++failed;
            CHECK(r.error().message.rfind("manifest: ", 0) == 0);
        }
    }
    CHECK(ok > 0);
    CHECK(failed > 0);
}
