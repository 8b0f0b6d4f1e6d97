#include "runner/tokenizer/source.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

namespace tokenizer {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view json_media_type = "application/vnd.ollama.image.json";

struct ModelName {
    std::string host = "registry.ollama.ai";
    std::string ns = "library";
    std::string model;
    std::string tag = "latest";
};

std::optional<ModelName> parse_name(const std::string& spec) {
    ModelName name;
    std::string rest = spec;
    if (const auto colon = rest.rfind(':'); colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
        name.tag = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
    }
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
        const auto slash = rest.find('/', start);
        parts.push_back(rest.substr(start, slash - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    if (parts.size() > 3) return std::nullopt;
    name.model = parts.back();
    if (parts.size() >= 2) name.ns = parts[parts.size() - 2];
    if (parts.size() == 3) name.host = parts[0];
    for (const auto* part : {&name.host, &name.ns, &name.model, &name.tag})
        if (part->empty() || *part == "." || *part == ".." || part->find('\\') != std::string::npos)
            return std::nullopt;
    return name;
}

// Whether a JSON blob is a tokenizer.json / tokenizer_config.json, when the layer has no name.
bool looks_like_tokenizer(const nlohmann::json& j) {
    return j.is_object() && j.contains("model") && j.contains("added_tokens");
}
bool looks_like_config(const nlohmann::json& j) {
    return j.is_object() &&
           (j.contains("tokenizer_class") || j.contains("add_bos_token") || j.contains("added_tokens_decoder"));
}

common::Result<TokenizerFiles> from_ollama(const std::string& spec, const fs::path& models) {
    const auto name = parse_name(spec);
    if (!name) return common::make_error(spec + ": not a file, a folder or an Ollama model name");
    const fs::path manifest = models / "manifests" / name->host / name->ns / name->model / name->tag;
    std::error_code ec;
    if (!fs::is_regular_file(manifest, ec))
        return common::make_error(spec + ": no such file or folder, and no Ollama model (looked for " +
                                  manifest.string() + "; set OLLAMA_MODELS to the models folder)");
    std::ifstream in(manifest, std::ios::binary);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        return common::make_error(manifest.string() + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array())
        return common::make_error(manifest.string() + ": no \"layers\" array");
    TokenizerFiles files;
    files.described_as = "Ollama model " + name->ns + "/" + name->model + ":" + name->tag;
    std::vector<fs::path> unnamed;
    for (const auto& layer : j["layers"]) {
        if (!layer.is_object() || layer.value("mediaType", "") != json_media_type) continue;
        const auto digest = layer.value("digest", "");
        if (digest.rfind("sha256:", 0) != 0 || digest.size() != 71 || digest.find('/') != std::string::npos)
            return common::make_error(manifest.string() + ": layer digest \"" + digest + "\" is not sha256:<64 hex>");
        const fs::path blob = models / "blobs" / ("sha256-" + digest.substr(7));
        const auto layer_name = layer.value("name", "");
        if (layer_name == "tokenizer.json")
            files.tokenizer_json = blob;
        else if (layer_name == "tokenizer_config.json")
            files.tokenizer_config = blob;
        else if (layer_name.empty())
            unnamed.push_back(blob);
    }
    // Older manifests carry no layer names: look inside the JSON blobs.
    for (const auto& blob : unnamed) {
        if (!files.tokenizer_json.empty() && files.tokenizer_config) break;
        std::ifstream b(blob, std::ios::binary);
        const auto parsed = nlohmann::json::parse(b, nullptr, false);
        if (parsed.is_discarded()) continue;
        if (files.tokenizer_json.empty() && looks_like_tokenizer(parsed))
            files.tokenizer_json = blob;
        else if (!files.tokenizer_config && looks_like_config(parsed))
            files.tokenizer_config = blob;
    }
    if (files.tokenizer_json.empty())
        return common::make_error(
            manifest.string() + ": " + files.described_as +
            " has no tokenizer.json layer (only safetensors models imported with "
            "`ollama create --experimental` carry one; GGUF models keep their vocabulary inside the GGUF)");
    if (!fs::is_regular_file(files.tokenizer_json, ec))
        return common::make_error(files.tokenizer_json.string() + ": blob listed in " + manifest.string() +
                                  " is missing");
    if (files.tokenizer_config && !fs::is_regular_file(*files.tokenizer_config, ec)) files.tokenizer_config.reset();
    return files;
}

}  // namespace

fs::path default_ollama_models() {
    if (const char* env = std::getenv("OLLAMA_MODELS"); env && *env) return env;
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".ollama" / "models";
    return "/var/lib/ollama/models";
}

common::Result<TokenizerFiles> resolve_tokenizer(const std::string& spec, const fs::path& ollama_models) {
    std::error_code ec;
    const fs::path path(spec);
    if (fs::is_directory(path, ec)) {
        TokenizerFiles files{path / "tokenizer.json", std::nullopt, "model folder " + spec};
        if (!fs::is_regular_file(files.tokenizer_json, ec))
            return common::make_error(spec + ": folder has no tokenizer.json");
        if (fs::is_regular_file(path / "tokenizer_config.json", ec))
            files.tokenizer_config = path / "tokenizer_config.json";
        return files;
    }
    if (fs::exists(path, ec)) {
        TokenizerFiles files{path, std::nullopt, spec};
        const auto config = path.parent_path().empty() ? fs::path("tokenizer_config.json")
                                                       : path.parent_path() / "tokenizer_config.json";
        if (path.filename() == "tokenizer.json" && fs::is_regular_file(config, ec)) files.tokenizer_config = config;
        return files;
    }
    if (spec.find('/') != std::string::npos && (spec[0] == '/' || spec[0] == '.'))
        return common::make_error(spec + ": no such file or folder");
    return from_ollama(spec, ollama_models);
}

}  // namespace tokenizer
