#include "runner/server/runner_server.h"

#include <sys/socket.h>

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "runner/completion/completion.h"
#include "runner/completion/context_fit.h"
#include "runner/engine/generate.h"
#include "runner/server/completion_request.h"

namespace runner_server {

namespace {

using nlohmann::json;

constexpr std::size_t max_request_bytes = 8u << 20;
constexpr std::size_t worker_threads = 64;

// Log-probabilities as Ollama's llm.Logprob marshals them; null when none were asked for.
json logprobs_json(const std::vector<runner::Logprob>& logprobs) {
    if (logprobs.empty()) return nullptr;
    json out = json::array();
    for (const auto& l : logprobs) {
        json entry = {{"token", l.token.token}, {"logprob", l.token.logprob}};
        if (!l.top.empty()) {
            entry["top_logprobs"] = json::array();
            for (const auto& t : l.top) entry["top_logprobs"].push_back({{"token", t.token}, {"logprob", t.logprob}});
        }
        out.push_back(std::move(entry));
    }
    return out;
}

void json_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    // A parse error quotes the bytes it stopped at, which need not be UTF-8.
    res.set_content(json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

struct Outcome {
    int done_reason = 0;  // MLX: 0 stop, 1 length
    // The prompt's tokens, of which the cache held `prompt_cached` and the model ran the rest. Ollama reports
    // the whole prompt as PromptEvalCount for its own runners and for llama-server (cache_n + prompt_n),
    // and clients size their context from it (opencode compacts by it): the MLX dialect sends the whole.
    std::size_t prompt_tokens = 0, prompt_cached = 0;
    std::size_t generated = 0;
    double prompt_seconds = 0, decode_seconds = 0;
    std::string error;
};

long long ns(double seconds) { return static_cast<long long>(seconds * 1e9); }

}  // namespace

RunnerServer::RunnerServer() : http_(std::make_unique<httplib::Server>()) { install_routes(); }

void RunnerServer::set_ready(runner::LanguageModel& model, const tokenizer::Tokenizer& tok, std::uint64_t memory_bytes,
                             std::string engine) {
    model_ = &model;
    sequence_.emplace(model);
    tok_ = &tok;
    memory_bytes_ = memory_bytes;
    engine_ = std::move(engine);
    ready_.store(true, std::memory_order_release);
}

RunnerServer::~RunnerServer() = default;

void RunnerServer::stop() {
    stop_requested_ = true;
    http_->stop();
}

bool RunnerServer::bind(const std::string& host, int port, std::string& error) {
    // httplib sets SO_REUSEPORT, with which a second runner on the same port listens beside the
    // first and requests go to either model. SO_REUSEADDR alone still rebinds a port in TIME_WAIT.
    auto listening = std::make_shared<int>(-1);
    http_->set_socket_options([listening](int sock) {
        const int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        *listening = sock;
    });
    if (!http_->bind_to_port(host.c_str(), port)) {
        error =
            "cannot listen on " + host + ":" + std::to_string(port) + " (in use, or not an address of this machine)";
        return false;
    }
    // Debian's compiled httplib listens with a backlog of 5: a burst of connections while the accept
    // thread waited for a core overflowed it, and a dropped handshake costs the client a 1 s SYN
    // retry, as long as Ollama's shortest status timeout. Listening again only raises the backlog.
    ::listen(*listening, SOMAXCONN);
    return true;
}

void RunnerServer::serve() {
    // httplib's stop() does nothing before its loop runs: a watcher repeats it until serving ends.
    std::atomic<bool> serving_done{false};
    std::thread watcher([&] {
        while (!serving_done) {
            if (stop_requested_) http_->stop();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    if (!stop_requested_) http_->listen_after_bind();
    serving_done = true;
    watcher.join();
}

void RunnerServer::install_routes() {
    auto& http = *http_;
    http.set_payload_max_length(max_request_bytes);
    // A worker waits out an idle keep-alive connection before it sees a stop (cpp-httplib 0.11), and
    // Ollama keeps one open and kills the runner 5 s after SIGINT, holding its scheduler meanwhile:
    // idle connections close after a second, so a stop takes about one.
    http.set_keep_alive_timeout(1);
    // Every connection holds a worker while it sends its headers or waits for the model: with
    // httplib's default of one per core, eight slow clients or a queue of completions kept Ollama's
    // status pings (1-10 s timeouts) from an answer, and Ollama takes a silent runner for dead.
    http.new_task_queue = [] { return new httplib::ThreadPool(worker_threads); };
    // More slow clients than workers queue the rest, status pings included, until a worker's read times
    // out: 2 s rather than httplib's 5 keeps a ping within Ollama's patience. Ollama's own requests
    // arrive whole over loopback in milliseconds.
    http.set_read_timeout(2, 0);
    // httplib bounds a body by its Content-Length only; a chunked one grew without limit before the
    // 413. Ollama's client always sends a length.
    http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
        if (req.get_header_value("Transfer-Encoding").find("chunked") == std::string::npos)
            return httplib::Server::HandlerResponse::Unhandled;
        json_error(res, 411, "send the request with a Content-Length; chunked bodies are not accepted");
        res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
    });

    // Status values are upstream's llm.ServerStatus: 0 ready, 3 loading the model.
    http.Get("/v1/status", [this](const httplib::Request&, httplib::Response& res) {
        if (!ready_.load(std::memory_order_acquire)) {
            res.status = 503;
            res.set_content(
                json{{"Status", 3}, {"Progress", progress_.load()}, {"ContextLength", 0}, {"Memory", 0}}.dump(),
                "application/json");
            return;
        }
        res.set_content(json{{"Status", 0},
                             {"Progress", 100},
                             {"ContextLength", model_->n_ctx()},
                             {"Memory", memory_bytes_},
                             {"Engine", engine_}}
                            .dump(),
                        "application/json");
    });
    // Everything that needs the model answers 503 until it is loaded.
    const auto when_ready = [this](httplib::Server::Handler handler) {
        return [this, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
            if (!ready_.load(std::memory_order_acquire))
                return json_error(res, 503, "loading model (" + std::to_string(progress_.load()) + "%)");
            handler(req, res);
        };
    };
    const auto models = [](const httplib::Request&, httplib::Response& res) {
        res.set_content(R"({"Success":true})", "application/json");
    };
    http.Get("/v1/models", models);
    http.Post("/v1/models", models);

    // Upstream's client posts to the old paths and follows 308s, as Go's http.Client does.
    for (const auto& [method, from, to] :
         {std::tuple{"GET", "/health", "/v1/status"}, std::tuple{"POST", "/load", "/v1/models"},
          std::tuple{"POST", "/completion", "/v1/completions"}}) {
        const std::string target = to;
        const auto redirect = [target](const httplib::Request&, httplib::Response& res) {
            res.status = 308;
            res.set_header("Location", target);
        };
        if (std::string(method) == "GET")
            http.Get(from, redirect);
        else
            http.Post(from, redirect);
    }

    http.Post("/v1/tokenize", when_ready([this](const httplib::Request& req, httplib::Response& res) {
                  json ids = json::array();
                  for (const auto id : tok_->encode(req.body, true)) ids.push_back(id);
                  res.set_content(ids.dump(), "application/json");
              }));
    http.Post(
        "/tokenize", when_ready([this](const httplib::Request& req, httplib::Response& res) {
            const auto parsed = parse_request_json(req.body);
            if (!parsed) return json_error(res, 400, parsed.error().message);
            const json& body = *parsed;
            if (!body.is_object() || !body.contains("content") || !body["content"].is_string())
                return json_error(res, 400, "expected {\"content\": \"text\"}");
            if (body.contains("add_special") && !body["add_special"].is_boolean())
                return json_error(res, 400, "\"add_special\" must be true or false");
            json ids = json::array();
            for (const auto id : tok_->encode(body["content"].get<std::string>(), body.value("add_special", false)))
                ids.push_back(id);
            res.set_content(json{{"tokens", ids}}.dump(), "application/json");
        }));
    http.Post("/detokenize", when_ready([this](const httplib::Request& req, httplib::Response& res) {
                  const auto parsed = parse_request_json(req.body);
                  if (!parsed) return json_error(res, 400, parsed.error().message);
                  const json& body = *parsed;
                  if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array())
                      return json_error(res, 400, "expected {\"tokens\": [ids]}");
                  std::vector<tokenizer::TokenId> ids;
                  const auto highest = static_cast<long long>(tok_->vocab_size()) - 1;
                  for (const auto& v : body["tokens"]) {
                      long long id = 0;
                      std::string problem;
                      if (!read_integer(json{{"tokens", v}}, "tokens", 0, highest, id, problem))
                          return json_error(res, 400, problem.empty() ? "\"tokens\" must hold integers" : problem);
                      ids.push_back(static_cast<tokenizer::TokenId>(id));
                  }
                  auto text = tok_->decode(ids);
                  if (!text) return json_error(res, 400, text.error().message);
                  res.set_content(json{{"content", *text}}.dump(-1, ' ', false, json::error_handler_t::replace),
                                  "application/json");
              }));

    http.Post("/v1/completions", when_ready([this](const httplib::Request& req, httplib::Response& res) {
                  auto parsed = parse_completion_request(req.body);
                  // Upstream's MLX client shows an error body verbatim inside its own message, and its
                  // runner answers in plain text (http.Error); llama-server's dialect gets JSON.
                  const bool llama_body =
                      parsed ? parsed->dialect == Dialect::llama : req.body.find("\"prompt\"") != std::string::npos;
                  const auto fail = [&](int status, const std::string& message) {
                      if (llama_body) return json_error(res, status, message);
                      res.status = status;
                      res.set_content(message + "\n", "text/plain; charset=utf-8");
                  };
                  if (!parsed) return fail(400, parsed.error().message);
                  auto request = std::make_shared<CompletionRequest>(std::move(parsed).value());
                  if (request->prompt.empty()) return fail(400, "the prompt is empty");
                  auto prompt = std::make_shared<std::vector<std::int32_t>>();
                  for (const auto id : tok_->encode(request->prompt, true)) prompt->push_back(id);
                  const int n_ctx = model_->n_ctx();
                  if (!runner::fits_context(prompt->size(), n_ctx)) {
                      if (request->num_keep < 0)
                          return fail(400, "the prompt has " + std::to_string(prompt->size()) +
                                               " tokens, more than the context of " + std::to_string(n_ctx) +
                                               " can hold with room to answer, and num_keep -1 keeps them all");
                      auto fitted = runner::fit_to_context(*prompt, n_ctx, request->num_keep);
                      // Ollama's log keeps the runner's stderr: the line says what the model no longer sees.
                      std::fprintf(stderr,
                                   "ollama-airllm runner: the prompt's %zu tokens do not fit the context of %d with "
                                   "room to answer: kept the first %zu and the last %zu\n",
                                   prompt->size(), n_ctx, fitted.kept, fitted.ids.size() - fitted.kept);
                      *prompt = std::move(fitted.ids);
                  }

                  const bool mlx = request->dialect == Dialect::mlx;
                  const auto line = [mlx](const runner::Piece& piece, bool done, const Outcome& o) {
                      const std::string& content = piece.text;
                      if (mlx)
                          return json{{"Content", content},
                                      {"Done", done},
                                      {"DoneReason", o.done_reason},
                                      {"PromptEvalCount", done ? o.prompt_tokens : 0},
                                      {"PromptEvalDuration", done ? ns(o.prompt_seconds) : 0},
                                      {"EvalCount", done ? o.generated : 0},
                                      {"EvalDuration", done ? ns(o.decode_seconds) : 0},
                                      {"Logprobs", logprobs_json(piece.logprobs)},
                                      {"Error", o.error.empty() ? json(nullptr)
                                                                : json{{"StatusCode", 500},
                                                                       {"Status", "500 Internal Server Error"},
                                                                       {"error", o.error}}}}
                                     .dump(-1, ' ', false, json::error_handler_t::replace) +
                                 "\n";
                      json j = {{"content", content}, {"stop", done}};
                      if (done)
                          j.update({{"stopped_limit", o.done_reason == 1},
                                    {"tokens_evaluated", o.prompt_tokens},
                                    {"tokens_cached", o.prompt_cached},
                                    {"tokens_predicted", o.generated},
                                    {"timings",
                                     {{"cache_n", o.prompt_cached},
                                      {"prompt_n", o.prompt_tokens - o.prompt_cached},
                                      {"prompt_ms", o.prompt_seconds * 1e3},
                                      {"predicted_n", o.generated},
                                      {"predicted_ms", o.decode_seconds * 1e3}}}});
                      return j.dump(-1, ' ', false, json::error_handler_t::replace);
                  };

                  // Runs the request, sending each piece through `emit`; emit returns false when the client left.
                  const auto run = [this, request, prompt](const runner::PieceFn& emit) {
                      Outcome o;
                      const std::lock_guard lock(generation_);  // later requests queue here
                      // A stop (SIGTERM, SIGINT) ends a generation at its next piece, as a client that left:
                      // serving ends only once every handler has returned.
                      const auto done = runner::complete(
                          *sequence_, tok_, *prompt, request->completion,
                          [&](const runner::Piece& piece) { return !stop_requested_.load() && emit(piece); });
                      if (!done) {
                          o.error = done.error().message;
                          return o;
                      }
                      o.prompt_tokens = prompt->size();
                      o.prompt_cached = done->prompt_reused;
                      o.generated = done->ids.size();
                      o.prompt_seconds = done->prompt_seconds;
                      o.decode_seconds = done->decode_seconds;
                      o.done_reason = runner::finish_is_cut(done->finish) ? 1 : 0;
                      return o;
                  };

                  if (!mlx && !request->stream) {
                      std::string text;
                      const auto o = run([&](const runner::Piece& piece) {
                          text += piece.text;
                          return true;
                      });
                      if (!o.error.empty()) return fail(500, o.error);
                      res.set_content(line(runner::Piece{text, {}}, true, o), "application/json");
                      return;
                  }
                  res.set_chunked_content_provider(
                      mlx ? "application/jsonl" : "text/event-stream",
                      [run, line, mlx](std::size_t, httplib::DataSink& sink) {
                          const auto send = [&](const std::string& payload) {
                              const std::string framed = mlx ? payload : "data: " + payload + "\n\n";
                              return sink.is_writable() && sink.write(framed.data(), framed.size());
                          };
                          const auto o =
                              run([&](const runner::Piece& piece) { return send(line(piece, false, Outcome{})); });
                          send(line(runner::Piece{}, true, o));
                          sink.done();
                          return true;
                      });
              }));

    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        json_error(res, 500, what);
    });
}

}  // namespace runner_server
