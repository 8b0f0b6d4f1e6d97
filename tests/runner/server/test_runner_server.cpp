// ollama-airllm runner as upstream Ollama's MLX client drives it (x/mlxrunner/client.go at v0.32.15):
// started with the command line patches/ollama-airllm.patch gives it, for a model in an Ollama
// models directory; ready when GET /v1/status answers 200 (polled every 100 ms, as client.go's
// WaitUntilRunning does); requests built from its Go structs' field names, POST /completion followed
// through the 308 as Go's http.Client does, JSONL parsed line by line.
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <thread>

#include "runner/engine/transformer.h"
#include "runner/model/hf_folder.h"
#include "runner/server/completion_request.h"
#include "runner/server/runner_server.h"
#include "runner/support/ollama_store.h"
#include "runner/tokenizer/source.h"
#include "support/free_port.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;
using nlohmann::json;
using test_support::free_port;

namespace {

const fs::path model = fs::path(OAR_FIXTURES) / "models/llama-mha-tied-f16";

// GET /v1/status every 100 ms until it answers 200, as client.go's WaitUntilRunning does.
bool wait_until_running(int port, int seconds) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(0, 200000);
    for (int i = 0; i < seconds * 10; ++i) {
        if (auto res = c.Get("/v1/status"); res && res->status == 200) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

// The fixture model imported into an Ollama models directory as library/tiny:latest.
struct Store {
    test_support::TempTree tree;
    Store() { test_support::import_model(tree, model); }
    std::string env() const { return "OLLAMA_MODELS=" + tree.root().string(); }
};

// The runner as the patched Ollama starts it: `runner --mlx-engine --model <name> --port <P> --ctx <num_ctx>`.
struct Runner {
    Store store;
    int port = free_port();
    test_support::RunningProcess process;

    explicit Runner(const std::string& ctx = "256")
        : process({OAR_OLLAMA_AIRLLM, "runner", "--mlx-engine", "--model", "tiny", "--port", std::to_string(port),
                   "--ctx", ctx},
                  {store.env()}) {
        REQUIRE(wait_until_running(port, 30));
    }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port);
        c.set_follow_location(true);
        c.set_read_timeout(60);
        return c;
    }
};

// The body client.go marshals from CompletionRequest{Prompt, Media, Options api.Options, Logprobs,
// TopLogprobs}: api.Options' fields carry omitempty, so zero values (temperature 0) are left out.
std::string mlx_request(const std::string& prompt, int num_predict, const json& stop = json::array()) {
    json options = {{"num_predict", num_predict}, {"seed", 42}, {"top_k", 40}};
    if (!stop.empty()) options["stop"] = stop;
    return json{{"Prompt", prompt}, {"Media", nullptr}, {"Options", options}, {"Logprobs", false}, {"TopLogprobs", 0}}
        .dump();
}

struct Streamed {
    std::string text;
    json done;
    int lines = 0;
};

Streamed parse_jsonl(const std::string& body) {
    Streamed s;
    std::size_t start = 0;
    while (start < body.size()) {
        const auto nl = body.find('\n', start);
        const auto line = json::parse(body.substr(start, nl - start));
        ++s.lines;
        s.text += line["Content"].get<std::string>();
        if (line["Done"].get<bool>()) s.done = line;
        start = nl == std::string::npos ? body.size() : nl + 1;
    }
    return s;
}

std::string greedy_text(const std::string& prompt, int n) {
    const auto r = test_support::run_process({OAR_OLLAMA_AIRLLM, "generate", model.string(), "-p", prompt, "-n",
                                              std::to_string(n), "--temperature", "0", "--json"});
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out)["text"].get<std::string>();
}

// A copy of a fixture model at tree/model whose config allows `n_ctx` positions.
void with_context(test_support::TempTree& tree, const std::string& fixture, int n_ctx) {
    tree.copy(fs::path(OAR_FIXTURES) / fixture, "model");
    auto config = test_support::read_file(tree.root() / "model/config.json");
    const std::string from = "\"max_position_embeddings\": 256";
    REQUIRE(config.find(from) != std::string::npos);
    tree.write("model/config.json",
               config.replace(config.find(from), from.size(), "\"max_position_embeddings\": " + std::to_string(n_ctx)));
}

// The process's resident memory, from /proc/PID/status.
std::size_t resident_bytes(int pid) {
    const auto status = test_support::read_file("/proc/" + std::to_string(pid) + "/status");
    const auto at = status.find("VmRSS:");
    REQUIRE(at != std::string::npos);
    return std::stoull(status.substr(at + 6)) * 1024;
}

}  // namespace

TEST_CASE("runner: a model from Ollama's store streams the same text as generate on its folder") {
    Runner runner;
    auto client = runner.client();
    const auto health = client.Get("/health");  // 308 to /v1/status
    REQUIRE(health);
    CHECK(health->status == 200);
    const auto status = json::parse(health->body);
    CHECK(status["Status"] == 0);
    CHECK(status["Progress"] == 100);
    CHECK(status["ContextLength"] == 256);
    CHECK(status["Memory"] == 0);  // Ollama counts it as GPU memory; the CPU engine holds none

    const auto res = client.Post("/completion", mlx_request("Layer streaming keeps", 12), "application/json");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->get_header_value("Content-Type") == "application/jsonl");
    const auto s = parse_jsonl(res->body);
    CHECK(s.text == greedy_text("Layer streaming keeps", 12));
    CHECK(s.done["DoneReason"] == 1);  // length
    CHECK(s.done["EvalCount"] == 12);
    CHECK(s.done["PromptEvalCount"].get<int>() > 0);
    CHECK(s.done["EvalDuration"].get<long long>() > 0);
    CHECK(s.done["Error"].is_null());
}

TEST_CASE("runner: a conversation's next turn runs only what follows the cached prefix, with the same answer") {
    Runner runner;
    auto client = runner.client();
    const auto tokens = [&](const std::string& prompt) {
        const auto res = client.Post("/v1/tokenize", prompt, "text/plain");
        REQUIRE(res);
        return json::parse(res->body).size();
    };
    const auto turn = [&](const std::string& prompt) {
        const auto res = client.Post("/v1/completions", mlx_request(prompt, 12), "application/json");
        REQUIRE(res);
        REQUIRE(res->status == 200);
        return parse_jsonl(res->body);
    };
    // llama-server's dialect says what ran (prompt_n) and what the cache held (cache_n).
    const auto timings = [&](const std::string& prompt) {
        const auto res = client.Post(
            "/completion", json{{"prompt", prompt}, {"n_predict", 4}, {"temperature", 0}}.dump(), "application/json");
        REQUIRE(res);
        const auto body = json::parse(res->body);
        // Ollama's llama-server client takes cache_n + prompt_n as the prompt's count.
        CHECK(body["tokens_evaluated"] == tokens(prompt));
        CHECK(body["tokens_cached"] == body["timings"]["cache_n"]);
        CHECK(body["timings"]["cache_n"].get<std::size_t>() + body["timings"]["prompt_n"].get<std::size_t>() ==
              tokens(prompt));
        return body["timings"];
    };
    const std::string turn1 = "Layer streaming keeps";
    const auto first = turn(turn1);
    // PromptEvalCount is the whole prompt, as Ollama reports it for every runner: clients size their
    // context from it.
    CHECK(first.done["PromptEvalCount"] == tokens(turn1));
    // The same prompt again: only its last token runs, for the logits of the answer's first.
    CHECK(timings(turn1)["prompt_n"] == 1);
    const auto again = turn(turn1);
    CHECK(again.text == first.text);
    // The next turn: the first prompt and its answer, then a new message.
    const std::string turn2 = turn1 + first.text + " Then the next layer";
    const auto second = turn(turn2);
    CHECK(second.done["PromptEvalCount"] == tokens(turn2));
    CHECK(second.text == greedy_text(turn2, 12));
    CHECK(timings(turn2)["prompt_n"] == 1);
    // A prompt that shares only the first turn's prompt runs the rest.
    const auto shared = timings(turn1 + " and something else entirely");
    CHECK(shared["cache_n"].get<std::size_t>() >= tokens(turn1) - 1);
    CHECK(shared["prompt_n"].get<std::size_t>() >= 1);
    CHECK(shared["prompt_n"].get<std::size_t>() < tokens(turn1 + " and something else entirely"));
}

TEST_CASE("runner: a prompt longer than the context keeps its first num_keep tokens and its end, as Ollama cuts") {
    Runner runner("64");
    auto client = runner.client();
    std::string prompt;
    for (int i = 0; i < 40; ++i) prompt += "layer " + std::to_string(i) + " streams; ";
    const auto tokenized = client.Post("/v1/tokenize", prompt, "text/plain");
    REQUIRE(tokenized);
    const auto ids = json::parse(tokenized->body).get<std::vector<int>>();
    REQUIRE(ids.size() > 64);
    auto options = json::parse(mlx_request(prompt, 8));
    options["Options"]["num_keep"] = 5;
    const auto res = client.Post("/v1/completions", options.dump(), "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    const auto s = parse_jsonl(res->body);
    // 64 positions less half of the 59 that num_keep leaves: 35 prompt tokens, the first 5 and the last 30.
    CHECK(s.done["PromptEvalCount"] == 35);
    CHECK(s.done["EvalCount"] == 8);
    // The same answer as generate gives for those 35 tokens.
    std::vector<int> kept(ids.begin(), ids.begin() + 5);
    kept.insert(kept.end(), ids.end() - 30, ids.end());
    std::string csv;
    for (const int id : kept) csv += (csv.empty() ? "" : ",") + std::to_string(id);
    const auto r = test_support::run_process({OAR_OLLAMA_AIRLLM, "generate", model.string(), "--prompt-ids", csv, "-n",
                                              "8", "--temperature", "0", "--ctx", "64", "--json"});
    REQUIRE(r.exit_code == 0);
    CHECK(s.text == json::parse(r.out)["text"].get<std::string>());
    CHECK(runner.process.wait_for_output(
        "do not fit the context of 64 with room to answer: kept the first 5 and the last 30", 5));
}

TEST_CASE("runner: stop strings end the stream before them with DoneReason stop") {
    Runner runner;
    const auto full = greedy_text("The quick brown fox", 16);
    REQUIRE(full.size() > 6);
    const std::string stop = full.substr(4, 3);
    auto client = runner.client();
    const auto res =
        client.Post("/v1/completions", mlx_request("The quick brown fox", 16, json::array({stop})), "application/json");
    REQUIRE(res);
    const auto s = parse_jsonl(res->body);
    CHECK(s.text == full.substr(0, full.find(stop)));
    CHECK(s.done["DoneReason"] == 0);
}

TEST_CASE("runner: Ollama's format shapes the answer to its JSON Schema, in both dialects") {
    Runner runner;
    auto client = runner.client();
    // As client.go sends it: api.GenerateRequest's format, a json.RawMessage, as it came, properties in the
    // user's order ("z" before "a", which a sorted object would swap).
    const std::string schema = R"({"type": "object", "properties": {"z": {"type": "boolean"},
        "a": {"enum": ["x", "y"]}, "n": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}},
        "required": ["z", "a", "n"]})";
    const std::string body = R"({"Prompt": "The answer as JSON:", "Format": )" + schema +
                             R"(, "Options": {"num_predict": 200, "temperature": 1, "seed": 3}})";
    const auto res = client.Post("/v1/completions", body, "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    const auto s = parse_jsonl(res->body);
    INFO(s.text);
    CHECK(s.done["DoneReason"] == 0);
    const auto answer = nlohmann::ordered_json::parse(s.text);
    REQUIRE(answer.is_object());
    CHECK(answer.begin().key() == "z");
    CHECK(answer["z"].is_boolean());
    CHECK((answer["a"] == "x" || answer["a"] == "y"));
    REQUIRE(answer["n"].is_array());
    CHECK(answer["n"].size() <= 3);
    for (const auto& n : answer["n"]) CHECK(n.is_number_integer());

    const std::string llama = R"({"prompt": "The answer as JSON:", "json_schema": {"enum": ["yes", "no"]},
        "n_predict": 20, "temperature": 0.8, "seed": 1})";
    const auto res2 = client.Post("/completion", llama, "application/json");
    REQUIRE(res2);
    REQUIRE(res2->status == 200);
    const auto content = json::parse(res2->body)["content"].get<std::string>();
    CHECK((content == R"("yes")" || content == R"("no")"));
}

TEST_CASE("runner: logprobs come with the pieces as Ollama's llm.Logprob, one per generated token") {
    Runner runner;
    auto client = runner.client();
    auto body = json::parse(mlx_request("The quick brown fox", 10));
    body["Logprobs"] = true;
    body["TopLogprobs"] = 2;
    const auto res = client.Post("/v1/completions", body.dump(), "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    std::size_t entries = 0;
    std::string tokens, text;
    json done;
    for (std::size_t start = 0; start < res->body.size();) {
        const auto nl = res->body.find('\n', start);
        const auto line = json::parse(res->body.substr(start, nl - start));
        start = nl == std::string::npos ? res->body.size() : nl + 1;
        text += line["Content"].get<std::string>();
        if (line["Done"].get<bool>()) done = line;
        if (line["Logprobs"].is_null()) continue;
        for (const auto& l : line["Logprobs"]) {
            ++entries;
            tokens += l["token"].get<std::string>();
            CHECK(l["logprob"].get<double>() <= 0);
            REQUIRE(l["top_logprobs"].size() == 2);
            CHECK(l["top_logprobs"][0]["logprob"].get<double>() >= l["logprob"].get<double>());
        }
    }
    CHECK(entries == done["EvalCount"].get<std::size_t>());
    CHECK(tokens == text);
    const auto plain = client.Post("/v1/completions", mlx_request("The quick brown fox", 10), "application/json");
    REQUIRE(plain);
    CHECK(plain->body.find("\"Logprobs\":[") == std::string::npos);
}

TEST_CASE("runner: tokenize and detokenize round trip") {
    Runner runner;
    auto client = runner.client();
    const auto ids = client.Post("/v1/tokenize", "Layer streaming keeps", "text/plain");
    REQUIRE(ids);
    const auto array = json::parse(ids->body);
    REQUIRE(array.is_array());
    CHECK(array[0] == 1);  // BOS, as the model's tokenizer adds it
    json rest(array.begin() + 1, array.end());
    const auto text = client.Post("/detokenize", json{{"tokens", rest}}.dump(), "application/json");
    REQUIRE(text);
    CHECK(json::parse(text->body)["content"] == "Layer streaming keeps");
    const auto llama = client.Post("/tokenize", R"({"content": "Layer streaming keeps"})", "application/json");
    CHECK(json::parse(llama->body)["tokens"] == rest);
}

TEST_CASE("runner: malformed requests, empty prompts, top logprobs past 20 and uncuttable long prompts get 400") {
    // Ollama's MLX client wraps a non-200 body verbatim in its own message, so that dialect gets the
    // reason as one plain line, as upstream's runner (http.Error) sends it; llama-server's gets JSON.
    Runner runner("16");
    auto client = runner.client();
    // anyOf of two equal branches, nested 20 deep: 2^20 ways to read the first byte.
    json twins = {{"$defs", json::object()}, {"$ref", "#/$defs/A0"}};
    for (int i = 0; i < 20; ++i) {
        const json next = {{"$ref", "#/$defs/A" + std::to_string(i + 1)}};
        twins["$defs"]["A" + std::to_string(i)] = {{"anyOf", {next, next}}};
    }
    twins["$defs"]["A20"] = {{"type", "string"}};
    const struct {
        std::string body;
        const char* reason;
    } rows[] = {
        {"{not json", "the request is not valid JSON"},
        {R"({"Prompt": 5})", "\"Prompt\" must be a string"},
        {R"({"Prompt": "x", "Options": {"temperature": "hot"}})", "Options: \"temperature\" must be a number"},
        {"[]", "the request must be a JSON object"},
        {R"({"text": "x"})", "the request has no \"Prompt\""},
        {mlx_request("", 4), "the prompt is empty"},
        {json{{"Prompt", "x"}, {"Logprobs", true}, {"TopLogprobs", 21}}.dump(),
         "\"TopLogprobs\" must be an integer from 0 to 20"},
        {json{{"Prompt", "x"}, {"Logprobs", "yes"}}.dump(), "\"Logprobs\" must be true or false"},
        {json{{"Prompt", std::string(200, 'a') + " layer streaming"}, {"Options", {{"num_keep", -1}}}}.dump(),
         "more than the context of 16 can hold with room to answer, and num_keep -1 keeps them all"},
        {json{{"Prompt", "x"}, {"Options", {{"num_keep", -2}}}}.dump(), "\"num_keep\" must be an integer from -1"},
        {R"({"Prompt": "x", "Format": {"type": "string", "pattern": "^a"}})",
         "format: /pattern: JSON Schema keyword \"pattern\" is not supported"},
        {R"({"Prompt": "x", "Format": "yaml"})", "format: \"yaml\" is neither \"json\" nor a JSON Schema object"},
        {json{{"Prompt", "x"}, {"Format", twins}}.dump(), "format: the schema's alternatives leave too many ways"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.body);
        const auto res = client.Post("/v1/completions", row.body, "application/json");
        REQUIRE(res);
        CHECK(res->status == 400);
        CHECK(res->get_header_value("Content-Type").rfind("text/plain", 0) == 0);
        CHECK(res->body.find(row.reason) != std::string::npos);
        CHECK(std::count(res->body.begin(), res->body.end(), '\n') == 1);
    }
    for (const char* body :
         {R"({"prompt": 5})", R"({"prompt": ""})", R"({"prompt": "x", "stream": "yes"})",
          R"({"prompt": "x", "grammar": "root ::= \"a\""})", R"({"prompt": "x", "json_schema": "json"})"}) {
        CAPTURE(body);
        const auto res = client.Post("/v1/completions", body, "application/json");
        REQUIRE(res);
        CHECK(res->status == 400);
        CHECK(json::parse(res->body).contains("error"));
    }
}

TEST_CASE("runner: hostile bodies get a 400 naming the problem, and the runner keeps serving") {
    Runner runner("16");
    auto client = runner.client();
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const struct {
        const char* path;
        std::string body;
        const char* reason;
    } rows[] = {
        {"/v1/completions", R"({"Prompt": "x", "Options": {"stop": )" + deep + "}}", "nests deeper than 64 levels"},
        {"/tokenize", R"({"content": )" + deep + "}", "nests deeper than 64 levels"},
        {"/v1/completions", R"({"Prompt": "x", "Options": {"num_predict": 4294967299}})",
         "\"num_predict\" must be an integer from -2147483648 to 2147483647"},
        {"/v1/completions", R"({"Prompt": "x", "Options": {"seed": 18446744073709551615}})",
         "\"seed\" must be an integer from"},
        {"/v1/completions", "{\"Prompt\": \"\xff\xfe\"}", "the request is not valid JSON"},
        // llama-server's dialect: JSON bodies, so the field's quotes come escaped.
        {"/detokenize", R"({"tokens": [1, 1099511627776]})", R"(tokens\" must be an integer from 0 to 383)"},
        {"/detokenize", R"({"tokens": [-1]})", R"(tokens\" must be an integer from 0 to 383)"},
        {"/tokenize", R"({"content": "x", "add_special": "yes"})", R"(add_special\" must be true or false)"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.path);
        CAPTURE(row.reason);
        const auto res = client.Post(row.path, row.body, "application/json");
        REQUIRE(res);
        CHECK(res->status == 400);
        CHECK(res->body.find(row.reason) != std::string::npos);
    }
    const auto status = client.Get("/v1/status");
    REQUIRE(status);
    CHECK(status->status == 200);
}

// A loopback connection to the runner that sends what it is given and nothing more.
struct RawConnection {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    explicit RawConnection(int port) {
        // On Linux a send timeout bounds connect() too: a handshake the listener dropped fails in 2 s.
        const timeval timeout{2, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~RawConnection() { ::close(fd); }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;
    void send(const std::string& bytes) const { REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) >= 0); }
    // What arrives until `text` is in it, the peer closes, or 5 s pass.
    std::string receive_until(const std::string& text) const {
        const timeval timeout{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        std::string out;
        char buf[4096];
        for (ssize_t n; out.find(text) == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
            out.append(buf, static_cast<std::size_t>(n));
        return out;
    }
};

namespace {

// `count` connections that send a request line and one header, then nothing: each holds a worker.
std::vector<std::unique_ptr<RawConnection>> slow_clients(int port, int count) {
    std::vector<std::unique_ptr<RawConnection>> slow;
    for (int i = 0; i < count; ++i) {
        slow.push_back(std::make_unique<RawConnection>(port));
        slow.back()->send("POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
    }
    return slow;
}

// How long /v1/status takes to answer 200, within `timeout_s` for connecting and for reading.
std::chrono::steady_clock::duration time_status(int port, int timeout_s) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(timeout_s);
    c.set_read_timeout(timeout_s);
    const auto start = std::chrono::steady_clock::now();
    const auto status = c.Get("/v1/status");
    REQUIRE(status);
    CHECK(status->status == 200);
    return std::chrono::steady_clock::now() - start;
}

}  // namespace

TEST_CASE("runner: status answers promptly while slow clients hold connections open") {
    // Ollama pings /v1/status with timeouts of 1-10 s and takes a runner that does not answer for dead.
    // The burst arrives while the runner is stopped, as when its accept thread waits for a busy core:
    // every handshake must wait in the listen backlog rather than be dropped and retried a second later.
    Runner runner;
    runner.process.send_signal(SIGSTOP);
    const auto slow = slow_clients(runner.port, 24);
    runner.process.send_signal(SIGCONT);
    CHECK(time_status(runner.port, 1) < std::chrono::seconds(1));
}

TEST_CASE("runner: status still answers while more slow clients than workers hold connections") {
    // 80 connections that never finish their headers take every one of the 64 workers; the ping waits
    // for the first read timeout, which must come well within Ollama's longest status timeout (10 s).
    Runner runner;
    const auto slow = slow_clients(runner.port, 80);
    CHECK(time_status(runner.port, 10) < std::chrono::milliseconds(4500));  // httplib's 5 s failed
}

TEST_CASE("runner: a chunked body is refused before it is read") {
    Runner runner;
    RawConnection conn(runner.port);
    conn.send("POST /v1/tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" +
              std::string(4096, 'a'));
    const auto reply = conn.receive_until("not accepted");
    CHECK(reply.rfind("HTTP/1.1 411", 0) == 0);
    CHECK(reply.find("chunked bodies are not accepted") != std::string::npos);
}

TEST_CASE("runner: the completion request fuzzing corpus parses or fails with a reason") {
    int ok = 0, failed = 0, formats = 0;
    for (const auto& entry : fs::directory_iterator(OAR_COMPLETION_CORPUS)) {
        CAPTURE(entry.path().filename().string());
        const auto request = runner_server::parse_completion_request(test_support::read_file(entry.path()));
        if (request.ok()) {
            ++ok;
            CHECK(request->completion.sampling.top_p <= 1);
            if (!request->completion.format) continue;
            // As the fuzzer drives it: the format's matcher follows the prompt's bytes as its next-byte
            // sets say.
            ++formats;
            runner::grammar::Matcher matcher(*request->completion.format);
            try {
                for (const char c : request->prompt) {
                    const bool next = matcher.first_bytes()[static_cast<std::uint8_t>(c)];
                    REQUIRE(matcher.accept({&c, 1}) == next);
                }
            } catch (const runner::grammar::AmbiguityError&) {  // a clean error, as complete() reports it
            }
        } else {
            ++failed;
            CHECK_FALSE(request.error().message.empty());
        }
    }
    CHECK(ok > 0);
    CHECK(failed > 0);
    CHECK(formats > 0);
}

TEST_CASE("runner: two clients at once both get their whole answer, and a client that leaves frees the model") {
    Runner runner;
    const auto expected = greedy_text("ROCm runs on", 24);
    std::string a, b;
    std::thread first([&] {
        auto c = runner.client();
        if (auto r = c.Post("/v1/completions", mlx_request("ROCm runs on", 24), "application/json"))
            a = parse_jsonl(r->body).text;
    });
    std::thread second([&] {
        auto c = runner.client();
        if (auto r = c.Post("/v1/completions", mlx_request("ROCm runs on", 24), "application/json"))
            b = parse_jsonl(r->body).text;
    });
    first.join();
    second.join();
    CHECK(a == expected);
    CHECK(b == expected);

    // A client that stops reading after the first line: generation is cancelled, the next request runs.
    {
        auto c = runner.client();
        int chunks = 0;
        httplib::Request req;
        req.method = "POST";
        req.path = "/v1/completions";
        req.body = mlx_request("ROCm runs on", 200);
        req.set_header("Content-Type", "application/json");
        req.content_receiver = [&](const char*, std::size_t, std::uint64_t, std::uint64_t) { return ++chunks < 2; };
        c.send(req);
    }
    const auto start = std::chrono::steady_clock::now();
    auto c = runner.client();
    const auto after = c.Post("/v1/completions", mlx_request("ROCm runs on", 4), "application/json");
    REQUIRE(after);
    CHECK(after->status == 200);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("runner: SIGTERM shuts it down cleanly, and a missing model is one line on stderr") {
    Runner runner;
    runner.process.send_signal(SIGTERM);
    const auto r = runner.process.wait();
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("loading ") != std::string::npos);
    CHECK(r.out.find("loaded 100%") != std::string::npos);

    const auto missing = test_support::run_process(
        {OAR_OLLAMA_AIRLLM, "runner", "--model", "/nonexistent/model", "--port", std::to_string(free_port())});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err == "ollama-airllm runner: error: /nonexistent/model: not a model folder\n");
}

TEST_CASE("runner: SIGTERM during a long streamed answer ends it at the next piece, and the runner exits") {
    // A fixture model given a 32k context: greedy, it runs on for tens of seconds without an EOS.
    test_support::TempTree tree;
    with_context(tree, "models/llama-gqa4-llama3rope", 32768);
    const int port = free_port();
    test_support::RunningProcess runner({OAR_OLLAMA_AIRLLM, "runner", "--model", (tree.root() / "model").string(),
                                         "--port", std::to_string(port), "--ctx", "32768"});
    REQUIRE(wait_until_running(port, 30));
    RawConnection conn(port);
    const std::string body = mlx_request("The quick brown fox", 30000);
    conn.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body);
    REQUIRE(conn.receive_until("\"Content\"").find("\"Done\":false") != std::string::npos);
    const auto start = std::chrono::steady_clock::now();
    runner.send_signal(SIGTERM);
    const auto rest = conn.receive_until("\"Done\":true");
    const auto r = runner.wait();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
    CHECK(r.exit_code == 0);
    // The answer ended, with its last line, long before its 30,000 tokens.
    const auto at = rest.find("\"EvalCount\":", rest.find("\"Done\":true"));
    REQUIRE(at != std::string::npos);
    CHECK(std::stoi(rest.substr(at + 12)) < 20000);
}

TEST_CASE("runner: Ollama's largest context loads on the CPU engine, whose cache grows with the tokens used") {
    // 262,144 positions of f32 keys and values for 3 layers of 4 heads of 16: 402 MB if allocated whole.
    test_support::TempTree tree;
    with_context(tree, "models/llama-mha-tied-f16", 262144);
    const std::size_t whole_cache = 2ull * 3 * 262144 * 64 * sizeof(float);
    const int port = free_port();
    test_support::RunningProcess runner({OAR_OLLAMA_AIRLLM, "runner", "--model", (tree.root() / "model").string(),
                                         "--port", std::to_string(port), "--ctx", "262144"},
                                        {"AIRLLM_DEVICE=cpu"});
    REQUIRE(wait_until_running(port, 30));
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(60);
    const auto status = client.Get("/v1/status");
    REQUIRE(status);
    CHECK(json::parse(status->body)["ContextLength"] == 262144);
    const auto res = client.Post("/v1/completions", mlx_request("The quick brown fox", 40), "application/json");
    REQUIRE(res);
    CHECK(parse_jsonl(res->body).done["EvalCount"] == 40);
    // Under AddressSanitizer the process holds about 82 MB; with the cache allocated whole, over 400.
    CHECK(resident_bytes(runner.pid()) < whole_cache / 2);
}

TEST_CASE("runner: a port another runner listens on is an error, not a second listener beside it") {
    Runner first;
    // Bounded: a runner that listened beside the first would serve, not exit; it is killed at the end.
    test_support::RunningProcess second(
        {OAR_OLLAMA_AIRLLM, "runner", "--mlx-engine", "--model", "tiny", "--port", std::to_string(first.port)},
        {first.store.env()});
    REQUIRE(second.wait_for_output("error: cannot listen on 127.0.0.1:" + std::to_string(first.port) + " (in use", 15));
    CHECK(second.wait().exit_code == 1);
}

TEST_CASE("runner: SIGINT with an idle keep-alive connection open stops it well within Ollama's 5 s") {
    // Ollama's client keeps a connection to the runner and kills it 5 s after SIGINT; cpp-httplib's
    // workers wait out an idle connection's keep-alive timeout before they see the stop.
    Runner runner;
    auto c = runner.client();
    c.set_keep_alive(true);
    const auto status = c.Get("/v1/status");
    REQUIRE(status);
    REQUIRE(status->status == 200);
    const auto start = std::chrono::steady_clock::now();
    runner.process.send_signal(SIGINT);
    const auto r = runner.process.wait();
    CHECK(r.exit_code == 0);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500));
}

TEST_CASE("runner: a model that fails to load ends the runner with an error line Ollama's log scanner keeps") {
    // llm.StatusWriter keeps what follows "error:" on the runner's output; the client reports it
    // when the process exits before /v1/status answers.
    Store store;
    std::filesystem::remove_all(store.tree.root() / "manifests");
    const auto port = free_port();
    const auto r = test_support::run_process(
        {OAR_OLLAMA_AIRLLM, "runner", "--mlx-engine", "--model", "tiny", "--port", std::to_string(port)},
        {store.env()});
    CHECK(r.exit_code == 1);
    const auto at = r.err.find("error: ");
    REQUIRE(at != std::string::npos);
    CHECK(r.err.find("no Ollama model (looked for " +
                         (store.tree.root() / "manifests/registry.ollama.ai/library/tiny/latest").string(),
                     at) != std::string::npos);
    CHECK(r.err.back() == '\n');
}

namespace {

// Each write(2) the program makes to stderr, in order: a SOCK_SEQPACKET socket keeps write
// boundaries, which a pipe would merge once the program has exited.
std::vector<std::string> stderr_writes(const std::vector<std::string>& argv) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(fds[1], STDERR_FILENO);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    std::vector<std::string> writes;
    std::string record(1 << 16, '\0');
    for (ssize_t n; (n = ::read(fds[0], record.data(), record.size())) > 0;)
        writes.push_back(record.substr(0, static_cast<std::size_t>(n)));
    ::close(fds[0]);
    ::waitpid(pid, nullptr, 0);
    return writes;
}

}  // namespace

TEST_CASE("runner: an error line reaches stderr in one write, as Ollama's status writer needs it") {
    // llm.StatusWriter matches "error:" within each Write it gets; a line written operand by operand
    // arrived as a bare "error:" and the user saw no reason.
    const auto writes = stderr_writes(
        {OAR_OLLAMA_AIRLLM, "runner", "--model", "/nonexistent/model", "--port", std::to_string(free_port())});
    REQUIRE(writes.size() == 1);
    CHECK(writes[0] == "ollama-airllm runner: error: /nonexistent/model: not a model folder\n");
}

TEST_CASE("runner server: while the model loads, status is 503 with the progress and requests get 503") {
    runner_server::RunnerServer server;
    const int port = free_port();
    std::string error;
    REQUIRE(server.bind("127.0.0.1", port, error));
    std::thread serving([&] { server.serve(); });
    server.set_progress(42);

    httplib::Client c("127.0.0.1", port);
    c.set_follow_location(true);
    const auto loading = c.Get("/health");
    REQUIRE(loading);
    CHECK(loading->status == 503);
    const auto progress = json::parse(loading->body);
    CHECK(progress["Status"] == 3);  // llm.ServerStatusLoadingModel
    CHECK(progress["Progress"] == 42);
    for (const char* path : {"/completion", "/v1/tokenize", "/tokenize", "/detokenize"}) {
        CAPTURE(path);
        const auto res = c.Post(path, mlx_request("x", 1), "application/json");
        REQUIRE(res);
        CHECK(res->status == 503);
        CHECK(json::parse(res->body)["error"] == "loading model (42%)");
    }

    auto source = runner::open_hf_folder(model);
    REQUIRE(source.ok());
    auto weights = runner::bind_weights(**source);
    REQUIRE(weights.ok());
    runner::Transformer engine(**source, std::move(weights).value(), 64, 1);
    auto files = tokenizer::resolve_tokenizer(model.string(), "/nonexistent");
    REQUIRE(files.ok());
    auto tok = tokenizer::Tokenizer::load(files->tokenizer_json, files->tokenizer_config);
    REQUIRE(tok.ok());
    server.set_ready(engine, *tok, 1234, "CPU, 2 threads");

    const auto ready = c.Get("/v1/status");
    REQUIRE(ready);
    CHECK(ready->status == 200);
    CHECK(
        json::parse(ready->body) ==
        json{{"Status", 0}, {"Progress", 100}, {"ContextLength", 64}, {"Memory", 1234}, {"Engine", "CPU, 2 threads"}});
    const auto ids = c.Post("/v1/tokenize", "hello", "text/plain");
    REQUIRE(ids);
    CHECK(ids->status == 200);
    server.stop();
    serving.join();
}
