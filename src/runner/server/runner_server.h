// ollama-airllm's HTTP side: the MLX runner protocol upstream Ollama's client speaks (GET /v1/status,
// POST /v1/completions streaming JSONL with Go field names, POST /v1/tokenize, /v1/models, and the 308
// redirects /health, /load, /completion) plus llama-server's /tokenize and /detokenize. One
// generation runs at a time; others wait their turn. The engine never sees HTTP: it gets a prompt
// and a callback that says when to stop.
//
// The server listens while the model loads: /v1/status then answers 503 with the load progress
// (upstream's client polls until it gets 200, so it waits), and every other request gets 503.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "runner/engine/kv_sequence.h"
#include "runner/tokenizer/tokenizer.h"

namespace httplib {
class Server;
}

namespace runner_server {

class RunnerServer {
  public:
    RunnerServer();
    ~RunnerServer();
    RunnerServer(const RunnerServer&) = delete;
    RunnerServer& operator=(const RunnerServer&) = delete;

    // false (with `error` set) when the address cannot be bound.
    bool bind(const std::string& host, int port, std::string& error);
    // Serves on the bound address until stop().
    void serve();
    // May be called from another thread at any time; a stop that comes before serve() runs ends the
    // next serve() at once.
    void stop();

    // While loading: the percentage /v1/status reports.
    void set_progress(int percent) { progress_ = percent; }
    // Loading is done: requests are served from now on. `memory_bytes` is what /v1/status reports as
    // the model's footprint (Ollama counts it as GPU memory), `engine` where the engine put the weights and
    // the KV cache (the load log's line; Ollama ignores the field). Both references must outlive the server.
    void set_ready(runner::LanguageModel& model, const tokenizer::Tokenizer& tok, std::uint64_t memory_bytes,
                   std::string engine);

  private:
    void install_routes();

    // Set once by set_ready(), read by handlers only after they see ready_.
    runner::LanguageModel* model_ = nullptr;
    // What the KV cache holds: a request that begins as the last one did (an agent's next turn) runs only
    // what follows the common prefix. Guarded by generation_.
    std::optional<runner::KvSequence> sequence_;
    const tokenizer::Tokenizer* tok_ = nullptr;
    std::uint64_t memory_bytes_ = 0;
    std::string engine_;
    std::atomic<bool> ready_{false};
    std::atomic<int> progress_{0};
    std::mutex generation_;  // the model and its KV cache serve one request at a time
    std::unique_ptr<httplib::Server> http_;
    std::atomic<bool> stop_requested_{false};
};

}  // namespace runner_server
