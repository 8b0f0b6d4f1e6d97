// Models stored by Ollama under $OLLAMA_MODELS: manifests/<host>/<namespace>/<model>/<tag> lists layers
// (media type, digest, name) whose blobs live in blobs/sha256-<hex>. Safetensors models keep one
// blob per tensor (a small safetensors file) and one JSON blob per config file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace runner {

inline constexpr const char* ollama_tensor_media_type = "application/vnd.ollama.image.tensor";
inline constexpr const char* ollama_json_media_type = "application/vnd.ollama.image.json";
// What `ollama pull` stores a GGUF model as.
inline constexpr const char* ollama_model_media_type = "application/vnd.ollama.image.model";

struct OllamaLayer {
    std::string media_type;
    std::string name;  // tensor name or file name ("config.json"); may be empty in older manifests
    std::filesystem::path blob;
    std::uint64_t size = 0;
};

struct OllamaManifest {
    std::filesystem::path file;
    std::string described_as;  // "Ollama model library/qwen3:latest"
    std::vector<OllamaLayer> layers;

    const OllamaLayer* json_layer(const std::string& name) const;
};

// A layer as a manifest lists it, before its blob is looked for.
struct ManifestEntry {
    std::string media_type;
    std::string name;
    std::string digest_hex;  // 64 lowercase hex digits
    std::uint64_t size = 0;
};

// The layers of a manifest's text: every digest sha256:<64 lowercase hex>, strings where strings belong.
// `file` names the manifest in errors.
common::Result<std::vector<ManifestEntry>> parse_ollama_manifest(std::string_view text, const std::string& file);

// `spec` is [host/][namespace/]model[:tag]; `models` is $OLLAMA_MODELS.
common::Result<OllamaManifest> read_ollama_manifest(const std::string& spec, const std::filesystem::path& models);

// $OLLAMA_MODELS, else $HOME/.ollama/models.
std::filesystem::path default_ollama_models();

}  // namespace runner
