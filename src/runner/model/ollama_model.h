// A model in Ollama's store: a GGUF blob as `ollama pull` stores it (model/gguf_model), or a safetensors
// model (`ollama create --experimental`): config.json and generation_config.json from JSON blobs, tensors
// from the tensor blobs, each a small safetensors file.
#pragma once

#include <filesystem>
#include <string>

#include "common/result.h"
#include "runner/model/weight_source.h"

namespace runner {

common::Result<WeightSourcePtr> open_ollama_model(const std::string& name, const std::filesystem::path& ollama_models);

}  // namespace runner
