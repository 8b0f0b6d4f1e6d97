// ollama-airllm detokenize --tokenizer PATH [--skip-special]   (ids as a JSON array on stdin)
#include <nlohmann/json.hpp>
#include <sstream>

#include "runner/cli/commands.h"
#include "runner/cli/tokenizer_option.h"

namespace runner_cli {

namespace {

constexpr const char* detokenize_usage = R"(usage: ollama-airllm detokenize --tokenizer PATH [--skip-special]

Reads a JSON array of token ids from standard input and prints their text exactly (no newline added).
PATH is a tokenizer.json, a model folder or an Ollama model name, as for tokenize.

  --skip-special   leave special tokens (BOS, EOS, chat markers) out of the text

Exit status: 0 done, 1 the tokenizer could not be found or loaded, 2 usage error or bad input
(not a JSON array of integers, or an id outside the vocabulary).
)";

}  // namespace

int run_detokenize(const std::vector<std::string>& args, CommandIo io) {
    std::optional<std::string> spec;
    bool skip_special = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "-h" || a == "--help") {
            io.out << detokenize_usage;
            return exit_ok;
        }
        if (a == "--skip-special") {
            skip_special = true;
        } else if (a == "--tokenizer" && i + 1 < args.size()) {
            spec = args[++i];
        } else {
            io.err << "ollama-airllm detokenize: unknown or incomplete argument '" << a << "'\n" << detokenize_usage;
            return exit_usage;
        }
    }
    if (!spec) {
        io.err << "ollama-airllm detokenize: --tokenizer is required\n" << detokenize_usage;
        return exit_usage;
    }
    std::ostringstream buffer;
    buffer << io.in.rdbuf();
    const auto parsed = nlohmann::json::parse(buffer.str(), nullptr, false);
    std::vector<tokenizer::TokenId> ids;
    const auto bad_input = [&](const std::string& problem) {
        io.err << "ollama-airllm detokenize: error: standard input: " << problem << '\n';
        return exit_usage;
    };
    if (parsed.is_discarded() || !parsed.is_array()) return bad_input("expected a JSON array of token ids");
    for (std::size_t i = 0; i < parsed.size(); ++i) {
        const auto& v = parsed[i];
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 0x7FFFFFFF)
            return bad_input("element " + std::to_string(i) + " is not a token id (" + v.dump() + ")");
        ids.push_back(static_cast<tokenizer::TokenId>(v.get<std::int64_t>()));
    }
    const auto tok = load_tokenizer(*spec, "detokenize", io.err);
    if (!tok) return exit_failed;
    const auto text = tok->decode(ids, skip_special);
    if (!text) return bad_input(text.error().message);
    io.out << *text;
    return exit_ok;
}

}  // namespace runner_cli
