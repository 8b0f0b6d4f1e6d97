// ollama-airllm verify MODEL: every blob of a model in Ollama's store against its digest.
#include "runner/cli/commands.h"
#include "runner/cli/model_options.h"
#include "runner/cli/store_check.h"

namespace runner_cli {

namespace {

constexpr const char* verify_usage = R"(usage: ollama-airllm verify MODEL

Hashes every blob of MODEL, a model in Ollama's store ($OLLAMA_MODELS), and checks each against the
SHA-256 digest it is named by. The runner does this once per blob at first load and remembers the
result by the blob's device, inode, size and modification time; verify always reads everything.
Exit status: 0 all match, 1 a blob is damaged or changed (named), 2 usage.
)";

}  // namespace

int run_verify(const std::vector<std::string>& args, CommandIo io) {
    if (args.size() == 1 && (args[0] == "-h" || args[0] == "--help")) {
        io.out << verify_usage;
        return exit_ok;
    }
    if (args.size() != 1 || args[0].empty() || args[0].front() == '-') {
        io.err << "ollama-airllm verify: which model? (ollama-airllm verify NAME)\n" << verify_usage;
        return exit_usage;
    }
    const auto& model = args[0];
    if (!names_ollama_model(model)) {
        io.err << "ollama-airllm verify: " << model
               << " is a folder; verify checks models in Ollama's store, whose blobs are named by their digests\n";
        return exit_usage;
    }
    if (!check_store_model(model, "verify", true, io.err)) return exit_failed;
    io.out << model << ": every blob matches its digest\n";
    return exit_ok;
}

}  // namespace runner_cli
