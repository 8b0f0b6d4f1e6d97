// ollama-airllm: the native layer-offload runner's command line.
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "runner/cli/commands.h"
#include "runner/cli/whole_line_stderr.h"

namespace {

struct Subcommand {
    std::string_view name;
    int (*run)(const std::vector<std::string>&, runner_cli::CommandIo);
    std::string_view summary;
};

constexpr Subcommand subcommands[] = {
#ifndef OAR_ENGINE_ONLY  // the engine-only build (cmake -DOAR_ENGINE_ONLY=ON) has no tokenizer or server
    {"tokenize", runner_cli::run_tokenize, "print the token ids of a text as a JSON array"},
    {"detokenize", runner_cli::run_detokenize, "print the text of a JSON array of token ids"},
    {"info", runner_cli::run_info, "architecture, parameters, bytes per layer and the plan for a RAM budget"},
    {"generate", runner_cli::run_generate, "run a model on the CPU or a GPU and stream the generated text"},
    {"runner", runner_cli::run_runner, "serve a model over HTTP as Ollama's runner (MLX protocol)"},
    {"prepare", runner_cli::run_prepare, "compress a model's layers once into the layer cache (8bit, 4bit)"},
    {"verify", runner_cli::run_verify, "check every blob of a model in Ollama's store against its digest"},
#endif
    {"selftest", runner_cli::run_selftest, "check every kernel against a reference, measure the rates, report"},
};

void usage(std::ostream& out) {
    out << "usage: ollama-airllm <command> [options]\n\ncommands:\n";
    for (const auto& s : subcommands)
        out << "  " << s.name << std::string(12 - s.name.size(), ' ') << s.summary << '\n';
    out << "\nollama-airllm <command> --help describes a command's options.\n";
}

}  // namespace

int main(int argc, char** argv) {
    const runner_cli::WholeLineStderr whole_lines;
    if (argc < 2) {
        usage(std::cerr);
        return runner_cli::exit_usage;
    }
    const std::string_view name = argv[1];
    if (name == "-h" || name == "--help") {
        usage(std::cout);
        return runner_cli::exit_ok;
    }
    const std::vector<std::string> args(argv + 2, argv + argc);
    for (const auto& s : subcommands) {
        if (s.name != name) continue;
        try {
            return s.run(args, {std::cin, std::cout, std::cerr});
        } catch (const std::exception& e) {
            std::cerr << "ollama-airllm " << name << ": error: " << e.what() << '\n';
            return runner_cli::exit_failed;
        }
    }
    std::cerr << "ollama-airllm: unknown command '" << name << "'\n";
    usage(std::cerr);
    return runner_cli::exit_usage;
}
