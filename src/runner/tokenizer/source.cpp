#include "runner/tokenizer/source.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/regular_file.h"
#include "runner/model/gguf.h"
#include "runner/model/gguf_model.h"
#include "runner/model/ollama_manifest.h"
#include "runner/tokenizer/gguf_vocab.h"

namespace tokenizer {

namespace fs = std::filesystem;

namespace {

// Whether a JSON blob is a tokenizer.json / tokenizer_config.json, when the layer has no name.
bool looks_like_tokenizer(const nlohmann::json& j) {
    return j.is_object() && j.contains("model") && j.contains("added_tokens");
}
bool looks_like_config(const nlohmann::json& j) {
    return j.is_object() &&
           (j.contains("tokenizer_class") || j.contains("add_bos_token") || j.contains("added_tokens_decoder"));
}

common::Result<TokenizerFiles> from_ollama(const std::string& spec, const fs::path& models) {
    auto manifest = runner::read_ollama_manifest(spec, models);
    if (!manifest) return manifest.error();
    std::error_code ec;
    TokenizerFiles files;
    files.described_as = manifest->described_as;
    std::vector<fs::path> unnamed;
    for (const auto& layer : manifest->layers) {
        if (layer.media_type != runner::ollama_json_media_type) continue;
        if (layer.name == "tokenizer.json")
            files.tokenizer_json = layer.blob;
        else if (layer.name == "tokenizer_config.json")
            files.tokenizer_config = layer.blob;
        else if (layer.name.empty())
            unnamed.push_back(layer.blob);
    }
    // Older manifests carry no layer names: look inside the JSON blobs.
    for (const auto& blob : unnamed) {
        if (!files.tokenizer_json.empty() && files.tokenizer_config) break;
        const auto text = common::read_regular_file(blob);
        if (!text) continue;
        const auto parsed = nlohmann::json::parse(*text, nullptr, false);
        if (parsed.is_discarded()) continue;
        if (files.tokenizer_json.empty() && looks_like_tokenizer(parsed))
            files.tokenizer_json = blob;
        else if (!files.tokenizer_config && looks_like_config(parsed))
            files.tokenizer_config = blob;
    }
    if (files.tokenizer_json.empty())
        return common::make_error(
            manifest->file.string() + ": " + files.described_as +
            " has no tokenizer.json layer (only safetensors models imported with "
            "`ollama create --experimental` carry one; GGUF models keep their vocabulary inside the GGUF)");
    if (!fs::is_regular_file(files.tokenizer_json, ec))
        return common::make_error(files.tokenizer_json.string() + ": blob listed in " + manifest->file.string() +
                                  " is missing");
    if (files.tokenizer_config && !fs::is_regular_file(*files.tokenizer_config, ec)) files.tokenizer_config.reset();
    return files;
}

// The GGUF file behind a spec, if it names one: the file itself, or an Ollama model's model blob.
std::optional<fs::path> gguf_behind(const std::string& spec, const fs::path& models) {
    std::error_code ec;
    if (fs::is_regular_file(spec, ec)) return runner::is_gguf_file(spec) ? std::optional<fs::path>(spec) : std::nullopt;
    if (fs::exists(spec, ec) || spec.empty() || spec[0] == '/' || spec[0] == '.') return std::nullopt;
    auto manifest = runner::read_ollama_manifest(spec, models);
    if (!manifest) return std::nullopt;
    for (const auto& layer : manifest->layers)
        if (layer.media_type == runner::ollama_model_media_type) return layer.blob;
    return std::nullopt;
}

}  // namespace

common::Result<Tokenizer> load_tokenizer(const std::string& spec, const fs::path& ollama_models) {
    if (const auto gguf = gguf_behind(spec, ollama_models)) {
        auto file = runner::GgufFile::open(*gguf);
        if (!file) return file.error();
        return load_gguf_tokenizer(file->header(), gguf->string());
    }
    auto files = resolve_tokenizer(spec, ollama_models);
    if (!files) return files.error();
    return Tokenizer::load(files->tokenizer_json, files->tokenizer_config);
}

fs::path default_ollama_models() { return runner::default_ollama_models(); }

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
