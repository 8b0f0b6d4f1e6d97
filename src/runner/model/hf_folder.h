// A Hugging Face model folder: config.json, generation_config.json, model.safetensors or
// model.safetensors.index.json with its shards.
#pragma once

#include <filesystem>

#include "common/result.h"
#include "runner/model/weight_source.h"

namespace runner {

common::Result<WeightSourcePtr> open_hf_folder(const std::filesystem::path& folder);

}  // namespace runner
