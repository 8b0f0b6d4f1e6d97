// ollama-airllm runner --model NAME_OR_PATH --port P [--host H] [--ctx N] [engine options]
// How the patched Ollama starts it (it also passes --mlx-engine, accepted and ignored).
#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "runner/cli/commands.h"
#include "runner/cli/engine_flags.h"
#include "runner/cli/model_options.h"
#include "runner/cli/store_check.h"
#include "runner/model/ollama_manifest.h"
#include "runner/server/runner_server.h"
#include "runner/tokenizer/source.h"

namespace runner_cli {

namespace {

constexpr const char* runner_usage =
    R"(usage: ollama-airllm runner --model NAME_OR_PATH --port P [--host H] [--ctx N] [engine options]

Serves a model over HTTP the way Ollama's MLX runner does (GET /v1/status, POST /v1/completions,
POST /v1/tokenize, and the /health, /load, /completion redirects), plus llama-server's /tokenize and
/detokenize. Listens on 127.0.0.1 unless --host says otherwise, from the start: while the model
loads, /v1/status answers 503 with its progress and other requests 503. A model that cannot be
loaded ends it with exit status 1 and one "error:" line on stderr. SIGINT or SIGTERM stop it.
--ctx (default 4096, at most the model's) sizes the KV cache. /v1/status reports the VRAM the
engine holds as Memory (0 on the CPU): Ollama counts it against the GPU.

)";

}  // namespace

int run_runner(const std::vector<std::string>& args, CommandIo io) {
    std::string model, host = "127.0.0.1";
    int port = 0, n_ctx = 4096;
    EngineFlags engine_flags;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        const bool has_value = i + 1 < args.size();
        if (auto taken = parse_engine_option(args, i, engine_flags)) {
            if (!*taken) {
                io.err << "ollama-airllm runner: " << taken->error().message << '\n';
                return exit_usage;
            }
        } else if (a == "-h" || a == "--help") {
            io.out << runner_usage << engine_options_usage;
            return exit_ok;
        } else if (a == "--mlx-engine") {
        } else if (a == "--model" && has_value) {
            model = args[++i];
        } else if (a == "--host" && has_value) {
            host = args[++i];
        } else if ((a == "--port" && has_value && parse_int(args[++i], port)) ||
                   (a == "--ctx" && has_value && parse_int(args[++i], n_ctx))) {
        } else {
            io.err << "ollama-airllm runner: unknown or incomplete argument '" << a << "'\n" << runner_usage;
            return exit_usage;
        }
    }
    if (model.empty() || port <= 0 || port > 65535 || n_ctx < 2) {
        io.err << "ollama-airllm runner: --model and a --port in 1-65535 are required\n" << runner_usage;
        return exit_usage;
    }
    // SIGINT and SIGTERM end the server from a thread of their own: blocked here, before the engine's
    // and the server's threads start, so that none of them takes the signal.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    // Listening first lets /v1/status show the load's progress; upstream's client waits for a 200.
    runner_server::RunnerServer server;
    std::string error;
    if (!server.bind(host, port, error)) {
        io.err << "ollama-airllm runner: error: " << error << '\n';
        return exit_failed;
    }
    std::atomic<bool> stopping{false};
    std::thread waiter([&] {
        int signal = 0;
        sigwait(&stop_signals, &signal);
        stopping = true;
        server.stop();
    });
    std::thread serving([&] { server.serve(); });
    const auto finish = [&](int code) {
        server.stop();
        if (serving.joinable()) serving.join();
        // Wakes the signal thread when serving ended for another reason.
        pthread_kill(waiter.native_handle(), SIGTERM);
        waiter.join();
        return code;
    };

    // Ollama reads the runner's stderr for the reason it failed: each error is one line there, also
    // for what throws (a thread still running would otherwise end the process in std::terminate).
    try {
        if (!check_store_model(model, "runner", false, io.err)) return finish(exit_failed);
        auto m = open_model(model, "runner", io.err);
        if (!m) return finish(exit_failed);
        auto tok = tokenizer::load_tokenizer(model, runner::default_ollama_models());
        if (!tok) {
            io.err << "ollama-airllm runner: error: " << tok.error().message << '\n';
            return finish(exit_failed);
        }
        n_ctx = std::min(n_ctx, m->source->config().max_position);
        const std::string described = m->source->describe();
        auto options = resolve_engine_options(engine_flags);
        auto engine = options ? runner::make_engine(*m->source, std::move(m->weights), n_ctx, *options)
                              : common::Result<runner::Engine>(options.error());
        if (!engine) {
            io.err << "ollama-airllm runner: error: " << engine.error().message << '\n';
            return finish(exit_failed);
        }
        io.err << "ollama-airllm runner: loading " << described << " on " << engine->description << '\n' << std::flush;
        int reported = -1;
        const auto loaded = engine->model->load([&](std::size_t done, std::size_t total) {
            const int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
            server.set_progress(percent);
            if (percent / 10 != reported / 10) {
                io.err << "ollama-airllm runner: loaded " << percent << "%\n" << std::flush;
                reported = percent;
            }
            return !stopping.load();
        });
        if (!loaded) {
            io.err << "ollama-airllm runner: error: " << loaded.error().message << '\n';
            return finish(exit_failed);
        }
        if (!*loaded) return finish(exit_ok);
        if (const auto summary = engine->model->load_summary(); !summary.empty())
            io.err << "ollama-airllm runner: " << summary << '\n';

        // Ollama counts this as GPU memory on every GPU: the VRAM the GPU engine holds, 0 on the CPU.
        server.set_ready(*engine->model, *tok, engine->device_bytes, engine->description);
        io.err << "ollama-airllm runner: " << described << " on http://" << host << ":" << port << " (context " << n_ctx
               << ")\n"
               << std::flush;
        serving.join();
        return finish(exit_ok);
    } catch (const std::exception& e) {
        io.err << "ollama-airllm runner: error: " << e.what() << '\n';
        return finish(exit_failed);
    }
}

}  // namespace runner_cli
