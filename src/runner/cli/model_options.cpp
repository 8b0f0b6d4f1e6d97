#include "runner/cli/model_options.h"

#include <charconv>

#include "runner/model/gguf_model.h"
#include "runner/model/hf_folder.h"
#include "runner/model/ollama_manifest.h"
#include "runner/model/ollama_model.h"

namespace runner_cli {

bool parse_int(const std::string& text, int& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

bool names_ollama_model(const std::string& model) {
    // A folder is a Hugging Face model, a file a GGUF model; anything else names a model in Ollama's store.
    std::error_code ec;
    return !(std::filesystem::exists(model, ec) || model.find('/') == 0 || model.rfind("./", 0) == 0);
}

std::optional<OpenModel> open_model(const std::string& path, const char* command, std::ostream& err) {
    std::error_code ec;
    auto source = names_ollama_model(path) ? runner::open_ollama_model(path, runner::default_ollama_models())
                  : std::filesystem::is_regular_file(path, ec) ? runner::open_gguf_model(path)
                                                               : runner::open_hf_folder(path);
    if (!source) {
        err << "ollama-airllm " << command << ": error: " << source.error().message << '\n';
        return std::nullopt;
    }
    auto weights = runner::bind_weights(**source);
    if (!weights) {
        // One line per problem is what the user has to fix; the first is enough to say what is wrong.
        const auto& m = weights.error().message;
        err << "ollama-airllm " << command << ": error: " << m.substr(0, m.find('\n')) << '\n';
        return std::nullopt;
    }
    return OpenModel{std::move(source).value(), std::move(weights).value()};
}

}  // namespace runner_cli
