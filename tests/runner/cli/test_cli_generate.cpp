// ollama-airllm info and generate as users and scripts run them.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <filesystem>

#include "runner/support/prompt_ids.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;
using test_support::run_process;

namespace {

const fs::path models = fs::path(OAR_FIXTURES) / "models";
const std::string airllm = OAR_OLLAMA_AIRLLM;

}  // namespace

TEST_CASE("cli: generate --json with --prompt-ids reproduces transformers' greedy tokens, streamed or not") {
    const auto ref = nlohmann::json::parse(test_support::read_file(models / "llama-sharded/reference.json"));
    for (const char* budget : {"0", "200KiB"}) {
        CAPTURE(budget);
        const auto r = run_process({airllm, "generate", (models / "llama-sharded").string(), "--prompt-ids",
                                    test_support::ids_csv(ref["prompt_ids"]), "-n", "32", "--temperature", "0",
                                    "--json", "--ram-budget", budget, "--threads", "2"});
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        const auto doc = nlohmann::json::parse(r.out);
        CHECK(doc["ids"] == ref["greedy_ids"]);
        CHECK(doc["prompt_tokens"] == ref["prompt_ids"].size());
        CHECK(doc["done_reason"] == "length");
        CHECK(doc["text"].is_string());
        if (std::string(budget) != "0") CHECK(doc["bytes_streamed_per_token"].get<std::size_t>() > 0);
    }
}

TEST_CASE("cli: the same seed gives the same text, and -p goes through the model's tokenizer") {
    const auto run = [&](const char* seed) {
        return run_process({airllm, "generate", (models / "qwen2-bias-tied").string(), "-p", "The quick brown fox",
                            "-n", "16", "--temperature", "1.0", "--top-k", "50", "--seed", seed, "--json"});
    };
    const auto a = run("11"), b = run("11"), c = run("12");
    REQUIRE(a.exit_code == 0);
    CHECK(nlohmann::json::parse(a.out)["ids"] == nlohmann::json::parse(b.out)["ids"]);
    CHECK(nlohmann::json::parse(a.out)["ids"] != nlohmann::json::parse(c.out)["ids"]);
    CHECK(nlohmann::json::parse(a.out)["prompt_tokens"].get<int>() > 1);
}

TEST_CASE("cli: streamed text goes to stdout and the speeds to stderr") {
    const auto r = run_process({airllm, "generate", (models / "llama-mha-tied-f16").string(), "-p", "Layer streaming",
                                "-n", "8", "--temperature", "0"});
    REQUIRE(r.exit_code == 0);
    CHECK_FALSE(r.out.empty());
    CHECK(r.err.find("prompt: ") != std::string::npos);
    CHECK(r.err.find("tokens/s; decode: 8 tokens") != std::string::npos);
}

TEST_CASE("cli: a stop string ends the streamed text and none of it is ever printed") {
    const auto generate = [&](std::vector<std::string> extra) {
        std::vector<std::string> argv = {
            airllm,          "generate", (models / "qwen2-bias-tied").string(), "-p", "The quick brown fox", "-n", "24",
            "--temperature", "0"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run_process(argv);
    };
    const auto whole = generate({});
    REQUIRE(whole.exit_code == 0);
    REQUIRE(whole.out.size() > 12);
    const auto stop = whole.out.substr(whole.out.size() / 2 - 1, 3);
    const auto r = generate({"--stop", stop});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == whole.out.substr(0, whole.out.find(stop)));
    CHECK(r.err.find("stopped: stop") != std::string::npos);
    const auto json = generate({"--stop", stop, "--json"});
    REQUIRE(json.exit_code == 0);
    CHECK(nlohmann::json::parse(json.out)["text"] == r.out);
}

TEST_CASE("cli: generate --format gives an answer in the schema, inline or from a file, and refuses what it cannot") {
    test_support::TempTree tree;
    const std::string schema = R"({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})";
    tree.write("schema.json", schema);
    for (const std::string& format : {schema, "@" + (tree.root() / "schema.json").string()}) {
        const auto r = run_process({airllm, "generate", (models / "llama-mha-tied-f16").string(), "-p", "Answer:", "-n",
                                    "60", "--temperature", "0", "--json", "--format", format});
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        const auto doc = nlohmann::json::parse(r.out);
        INFO(doc["text"]);
        const auto answer = nlohmann::json::parse(doc["text"].get<std::string>());
        CHECK(answer["ok"].is_boolean());
        CHECK(doc["done_reason"] == "stop");
    }
    const struct {
        std::string format, says;
    } bad[] = {
        {R"({"type": "string", "pattern": "a"})", "--format: format: /pattern: JSON Schema keyword \"pattern\""},
        {"{not json", "--format: not json and not a JSON Schema"},
        {"@" + (tree.root() / "missing.json").string(), "missing.json"},
    };
    for (const auto& b : bad) {
        const auto r = run_process(
            {airllm, "generate", (models / "llama-mha-tied-f16").string(), "-p", "x", "--format", b.format});
        CHECK(r.exit_code == 2);
        CHECK_MESSAGE(r.err.find(b.says) != std::string::npos, r.err);
    }
}

TEST_CASE("cli: info describes the model and the plan under a budget") {
    const auto r = run_process({airllm, "info", (models / "llama-gqa4-llama3rope").string(), "--ram-budget", "300KiB"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("LlamaForCausalLM") != std::string::npos);
    CHECK(r.out.find("n_head 4, n_head_kv 1, head_dim 16") != std::string::npos);
    CHECK(r.out.find("scaling llama3") != std::string::npos);
    CHECK(r.out.find("streamed (") != std::string::npos);
}

TEST_CASE("cli: usage errors and corrupt models exit 2 with one clear line") {
    test_support::TempTree tree;
    tree.copy(models / "mistral-gqa2-f32", "m");
    fs::resize_file(tree.root() / "m/model.safetensors", 1000);
    const struct {
        std::vector<std::string> args;
        const char* expect;
    } rows[] = {
        {{airllm, "generate", (models / "llama-sharded").string()}, "no prompt: give -p TEXT or --prompt-ids"},
        {{airllm, "generate", (models / "llama-sharded").string(), "--prompt-ids", "1,x"},
         "--prompt-ids wants comma-separated token ids"},
        {{airllm, "generate", (models / "llama-sharded").string(), "-p", "x", "--temperature", "hot"},
         "unknown or incomplete argument '--temperature'"},
        {{airllm, "generate", "/nonexistent/model", "-p", "x"}, "/nonexistent/model: not a model folder"},
        {{airllm, "generate", (tree.root() / "m").string(), "-p", "x"}, "(truncated"},
        {{airllm, "generate", (models / "llama-sharded").string(), "-p", "x", "--ctx", "2000000000"},
         "--ctx 2000000000 is more than the model's context of 256 tokens (max_position_embeddings)"},
        {{airllm, "info", (models / "llama-sharded").string(), "--ram-budget", "lots"},
         "--ram-budget 'lots' is not a size"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.expect);
        const auto r = run_process(row.args);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find(row.expect) != std::string::npos);
    }
    const auto oov = run_process({airllm, "generate", (models / "llama-sharded").string(), "--prompt-ids", "1,5000"});
    CHECK(oov.exit_code == 1);
    CHECK(oov.err.find("outside the vocabulary of 384") != std::string::npos);
}

TEST_CASE("cli: a FIFO in place of a model's file is an error naming it, not a wait for a writer") {
    const std::pair<const char*, const char*> rows[] = {
        {"config.json", "no config.json"},
        {"tokenizer.json", "has no tokenizer.json"},
        {"model.safetensors", "model.safetensors: not a regular file"},
    };
    for (const auto& [file, expect] : rows) {
        CAPTURE(file);
        test_support::TempTree tree;
        tree.copy(models / "llama-mha-tied-f16", "m");
        fs::remove(tree.root() / "m" / file);
        REQUIRE(::mkfifo((tree.root() / "m" / file).c_str(), 0644) == 0);
        // Bounded: a generate that opened the FIFO would block; it is killed at the end of the test.
        test_support::RunningProcess r({airllm, "generate", (tree.root() / "m").string(), "-p", "x", "-n", "1"});
        CHECK(r.wait_for_output(expect, 20));
        CHECK(r.wait().exit_code == 2);
    }
}

TEST_CASE("cli: --device and AIRLLM_DEVICE choose the engine, and a GPU that is not there is one clear error") {
    const auto ref = nlohmann::json::parse(test_support::read_file(models / "llama-sharded/reference.json"));
    const std::vector<std::string> base = {airllm,
                                           "generate",
                                           (models / "llama-sharded").string(),
                                           "--prompt-ids",
                                           test_support::ids_csv(ref["prompt_ids"]),
                                           "-n",
                                           "4",
                                           "--temperature",
                                           "0",
                                           "--json"};
    // On the CPU by flag, and by the service's variable (the flag wins over the variable).
    auto argv = base;
    argv.insert(argv.end(), {"--device", "cpu"});
    auto r = run_process(argv, {"AIRLLM_DEVICE=hip:7"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(nlohmann::json::parse(r.out)["device"].get<std::string>().rfind("CPU, ", 0) == 0);
    r = run_process(base, {"AIRLLM_DEVICE=cpu"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);

    // CI has no GPU: asking for one fails with what to do, whichever backend this build has.
    if (run_process({"/usr/bin/nvidia-smi", "-L"}).exit_code != 0) {
        r = run_process(base, {"AIRLLM_DEVICE=hip:0"});
        CHECK(r.exit_code == 1);
        CHECK(r.err.rfind("ollama-airllm generate: error: AIRLLM_DEVICE=hip:0: ", 0) == 0);
        CHECK(r.err.find("; use cpu") != std::string::npos);
        argv = base;
        argv.insert(argv.end(), {"--device", "cuda:0"});
        r = run_process(argv);
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("--device cuda:0: ") != std::string::npos);
    }

    for (const auto& [flag, value, message] :
         {std::tuple{"--device", "gpu0", "--device 'gpu0' is not a device: use cpu, cuda:N, hip:N or auto"},
          std::tuple{"--vram-budget", "4XB", "--vram-budget '4XB' is not a size such as 8GiB"},
          std::tuple{"--max-batch", "0", "--max-batch '0' is not a count"},
          std::tuple{"--compression", "int8", "--compression 'int8' is not none, 8bit or 4bit"},
          std::tuple{"--kv-cache", "q8_0", "--kv-cache 'q8_0' is not f16 or f32"},
          std::tuple{"--host-share", "-2", "--host-share '-2' is not a percentage (0 to 100) or auto"},
          std::tuple{"--host-share", "101", "--host-share '101' is not a percentage (0 to 100) or auto"}}) {
        argv = base;
        argv.insert(argv.end(), {flag, value});
        r = run_process(argv);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find(message) != std::string::npos);
    }
    r = run_process(base, {"AIRLLM_COMPRESSION=int4"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("AIRLLM_COMPRESSION 'int4' is not none, 8bit or 4bit") != std::string::npos);
    r = run_process(base, {"AIRLLM_KV_CACHE=bf16"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("AIRLLM_KV_CACHE 'bf16' is not f16 or f32") != std::string::npos);
    r = run_process(base, {"AIRLLM_DEVICE=tpu"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("AIRLLM_DEVICE 'tpu' is not a device") != std::string::npos);
}
