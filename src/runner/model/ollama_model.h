// A safetensors model stored by Ollama (`ollama create --experimental`): config.json and
// generation_config.json from JSON blobs, tensors from the tensor blobs, each a small safetensors file.
#pragma once

#include <filesystem>
#include <string>

#include "common/result.h"
#include "runner/model/weight_source.h"

namespace runner {

common::Result<WeightSourcePtr> open_ollama_model(const std::string& name, const std::filesystem::path& ollama_models);

}  // namespace runner
