#include "runner/cli/tokenizer_option.h"

#include "runner/tokenizer/source.h"

namespace runner_cli {

std::optional<tokenizer::Tokenizer> load_tokenizer(const std::string& spec, const char* command, std::ostream& err) {
    auto loaded = tokenizer::load_tokenizer(spec, tokenizer::default_ollama_models());
    if (!loaded) {
        err << "ollama-airllm " << command << ": error: " << loaded.error().message << '\n';
        return std::nullopt;
    }
    return std::move(loaded).value();
}

}  // namespace runner_cli
