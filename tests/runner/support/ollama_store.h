// Writes a model into an Ollama models directory ($OLLAMA_MODELS) the way `ollama create
// --experimental` lays it out at Ollama v0.32.15 (x/create): a manifest, one small safetensors blob per
// tensor, a JSON blob per config file and a config blob saying "safetensors". Our own writer, from
// those facts: no upstream code.
#pragma once

#include <filesystem>
#include <string>

#include "support/temp_tree.h"

namespace test_support {

struct StoreOptions {
    std::string manifest_path = "registry.ollama.ai/library/tiny/latest";
    bool with_config_json = true;
};

// Imports the Hugging Face folder `model_dir` (one model.safetensors) into `store`.
void import_model(const TempTree& store, const std::filesystem::path& model_dir, const StoreOptions& options = {});

// Stores a GGUF file as `ollama pull` does: the file as one application/vnd.ollama.image.model blob, a
// template and a params blob, and a config blob naming the format.
void import_gguf(const TempTree& store, const std::filesystem::path& gguf, const StoreOptions& options = {});

}  // namespace test_support
