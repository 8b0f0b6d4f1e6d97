// Where a tokenizer comes from: a tokenizer.json file, a model folder holding tokenizer.json (and
// perhaps tokenizer_config.json), or an Ollama model name ([host/][namespace/]model[:tag]) whose
// manifest under $OLLAMA_MODELS lists them as application/vnd.ollama.image.json blobs.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "common/result.h"

namespace tokenizer {

struct TokenizerFiles {
    std::filesystem::path tokenizer_json;
    std::optional<std::filesystem::path> tokenizer_config;
    std::string described_as;  // "model folder X", "Ollama model library/x:latest", ...
};

// `ollama_models` is $OLLAMA_MODELS (or ~/.ollama/models); passed in so tests can use a fixture.
common::Result<TokenizerFiles> resolve_tokenizer(const std::string& spec, const std::filesystem::path& ollama_models);

// $OLLAMA_MODELS, else $HOME/.ollama/models.
std::filesystem::path default_ollama_models();

}  // namespace tokenizer
