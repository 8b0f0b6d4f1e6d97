// ollama-airllm tokenize --tokenizer PATH [--text T] [--no-special]
#include <iterator>
#include <sstream>

#include "runner/cli/commands.h"
#include "runner/cli/tokenizer_option.h"

namespace runner_cli {

namespace {

constexpr const char* tokenize_usage = R"(usage: ollama-airllm tokenize --tokenizer PATH [--text TEXT] [--no-special]

Prints the token ids of TEXT (or of all of standard input, byte for byte) as a JSON array.
PATH is a tokenizer.json, a model folder holding one (tokenizer_config.json beside it is read too),
a GGUF model (its tokenizer.ggml.* vocabulary), or an Ollama model name (library/NAME:TAG, resolved
through $OLLAMA_MODELS).
Invalid UTF-8 is replaced by U+FFFD first, as Hugging Face and transformers.js do.

  --no-special   leave out the BOS/EOS tokens the tokenizer adds (special tokens written in the
                 text are still recognised)

Exit status: 0 done, 1 the tokenizer could not be found or loaded, 2 usage error.
)";

}  // namespace

int run_tokenize(const std::vector<std::string>& args, CommandIo io) {
    std::optional<std::string> spec, text;
    bool add_special = true;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "-h" || a == "--help") {
            io.out << tokenize_usage;
            return exit_ok;
        }
        if (a == "--no-special") {
            add_special = false;
        } else if ((a == "--tokenizer" || a == "--text") && i + 1 < args.size()) {
            (a == "--text" ? text : spec) = args[++i];
        } else {
            io.err << "ollama-airllm tokenize: unknown or incomplete argument '" << a << "'\n" << tokenize_usage;
            return exit_usage;
        }
    }
    if (!spec) {
        io.err << "ollama-airllm tokenize: --tokenizer is required\n" << tokenize_usage;
        return exit_usage;
    }
    if (!text) {
        std::ostringstream buffer;
        buffer << io.in.rdbuf();
        text = buffer.str();
    }
    const auto tok = load_tokenizer(*spec, "tokenize", io.err);
    if (!tok) return exit_failed;
    const auto ids = tok->encode(*text, add_special);
    io.out << '[';
    for (std::size_t i = 0; i < ids.size(); ++i) io.out << (i ? "," : "") << ids[i];
    io.out << "]\n";
    return exit_ok;
}

}  // namespace runner_cli
