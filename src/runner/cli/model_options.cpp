#include "runner/cli/model_options.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <regex>

#include "runner/model/hf_folder.h"
#include "runner/model/ollama_manifest.h"
#include "runner/model/ollama_model.h"

namespace runner_cli {

bool parse_int(const std::string& text, int& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

std::optional<std::uint64_t> parse_size(const std::string& text) {
    static const std::regex re(R"((\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?)");
    std::smatch m;
    if (!std::regex_match(text, m, re)) return std::nullopt;
    const double value = std::stod(m[1].str());
    const std::string unit = m[2].matched ? m[2].str() : "B";
    double scale = 1;
    if (unit == "KiB")
        scale = 1024.0;
    else if (unit == "MiB")
        scale = 1024.0 * 1024;
    else if (unit == "GiB")
        scale = 1024.0 * 1024 * 1024;
    else if (unit == "TiB")
        scale = 1024.0 * 1024 * 1024 * 1024;
    else if (unit == "KB")
        scale = 1e3;
    else if (unit == "MB")
        scale = 1e6;
    else if (unit == "GB")
        scale = 1e9;
    else if (unit == "TB")
        scale = 1e12;
    return static_cast<std::uint64_t>(std::llround(value * scale));
}

std::string format_size(std::uint64_t bytes) {
    char buf[32];
    if (bytes >= (1ull << 30))
        std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
    else if (bytes >= (1ull << 20))
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
    else
        std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
    return buf;
}

bool names_ollama_model(const std::string& model) {
    // A folder is a Hugging Face model; anything else names a model in Ollama's store.
    std::error_code ec;
    return !(std::filesystem::is_directory(model, ec) || model.find('/') == 0 || model.rfind("./", 0) == 0);
}

std::optional<OpenModel> open_model(const std::string& path, const char* command, std::ostream& err) {
    auto source = names_ollama_model(path) ? runner::open_ollama_model(path, runner::default_ollama_models())
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
