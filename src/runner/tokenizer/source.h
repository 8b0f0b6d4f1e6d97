// Where a tokenizer comes from: a tokenizer.json file, a model folder holding tokenizer.json (and
// perhaps tokenizer_config.json), or an Ollama model name ([host/][namespace/]model[:tag]) whose
// manifest under $OLLAMA_MODELS lists them as application/vnd.ollama.image.json blobs.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "common/result.h"
#include "runner/tokenizer/tokenizer.h"

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

// The tokenizer `spec` names: tokenizer.json's as resolve_tokenizer finds it, or the vocabulary inside a GGUF
// model (a GGUF file, or an Ollama model whose weights are a GGUF blob, as `ollama pull` stores them).
common::Result<Tokenizer> load_tokenizer(const std::string& spec, const std::filesystem::path& ollama_models);

}  // namespace tokenizer
