// ollama-airllm selftest [--device cpu|cuda:N|hip:N] [--model MODEL [--ctx N] [engine options]]
#include <cstdio>

#include "runner/cli/commands.h"
#include "runner/cli/engine_flags.h"
#include "runner/cli/model_options.h"
#include "runner/engine/device_selftest.h"
#include "runner/selftest/first_load.h"

namespace runner_cli {

namespace {

constexpr const char* selftest_usage =
    R"(usage: ollama-airllm selftest [--device DEVICE] [--model MODEL [--ctx N]] [options]

Runs every kernel the engine uses on small known inputs against a reference (a GPU's against the CPU's, the
CPU's vector kernels against its portable ones), measures the rates the engine depends on, and prints a
report to paste into a bug report. With --model, also what the planner does with that model under the
budget the options give. Exits 1 when any kernel gives a wrong result.

  --ctx N                   context for the plan (default 2048)
)";

void print_row(std::ostream& out, const std::string& key, const std::string& value, std::size_t width = 24) {
    out << key << std::string(key.size() < width ? width - key.size() : 1, ' ') << value << '\n';
}

std::string number(float v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2g", static_cast<double>(v));
    return text;
}

}  // namespace

int run_selftest(const std::vector<std::string>& args, CommandIo io) {
    std::string model;
    int n_ctx = 2048;
    EngineFlags engine_flags;
    const auto usage_error = [&](const std::string& why) {
        io.err << "ollama-airllm selftest: " << why << "\n(ollama-airllm selftest --help lists the options)\n";
        return exit_usage;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (auto taken = parse_engine_option(args, i, engine_flags)) {
            if (!*taken) return usage_error(taken->error().message);
        } else if (a == "-h" || a == "--help") {
            io.out << selftest_usage << engine_options_usage;
            return exit_ok;
        } else if (a == "--model" && i + 1 < args.size()) {
            model = args[++i];
        } else if (a == "--ctx" && i + 1 < args.size()) {
            if (!parse_int(args[++i], n_ctx) || n_ctx <= 0)
                return usage_error("--ctx wants a positive number of tokens");
        } else {
            return usage_error("unknown or incomplete argument '" + a + "'");
        }
    }
    auto options = resolve_engine_options(engine_flags);
    if (!options) return usage_error(options.error().message);
    auto report = runner::selftest_device(options->device);
    if (!report) {
        io.err << "ollama-airllm selftest: error: " << report.error().message << '\n';
        return exit_failed;
    }
    io.out << "ollama-airllm selftest\n";
    for (const auto& [key, value] : report->facts) print_row(io.out, key, value);
    for (const auto& c : report->checks)
        print_row(io.out, (c.passed() ? "  pass  " : "  FAIL  ") + c.kernel,
                  c.failure.empty() ? "error " + number(c.error) + ", allowed " + number(c.tolerance) : c.failure, 44);
    for (const auto& [key, value] : report->rates) print_row(io.out, key, value);

    if (!model.empty()) {
        auto m = open_model(model, "selftest", io.err);
        if (!m) return exit_usage;
        n_ctx = std::min(n_ctx, m->source->config().max_position);
        auto engine = runner::make_engine(*m->source, std::move(m->weights), n_ctx, *options);
        print_row(io.out, "plan", engine ? engine->description : "refused: " + engine.error().message);
    }
    const auto* failed = runner::selftest::first_failure(report->checks);
    print_row(io.out, "result",
              failed ? "FAIL: " + runner::selftest::describe_failure(*failed)
                     : "pass, " + std::to_string(report->checks.size()) + " kernels checked");
    return failed ? exit_failed : exit_ok;
}

}  // namespace runner_cli
