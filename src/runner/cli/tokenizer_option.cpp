#include "runner/cli/tokenizer_option.h"

#include "runner/tokenizer/source.h"

namespace runner_cli {

std::optional<tokenizer::Tokenizer> load_tokenizer(const std::string& spec, const char* command, std::ostream& err) {
    const auto files = tokenizer::resolve_tokenizer(spec, tokenizer::default_ollama_models());
    if (!files) {
        err << "ollama-airllm " << command << ": error: " << files.error().message << '\n';
        return std::nullopt;
    }
    auto loaded = tokenizer::Tokenizer::load(files->tokenizer_json, files->tokenizer_config);
    if (!loaded) {
        err << "ollama-airllm " << command << ": error: " << loaded.error().message << '\n';
        return std::nullopt;
    }
    return std::move(loaded).value();
}

}  // namespace runner_cli
