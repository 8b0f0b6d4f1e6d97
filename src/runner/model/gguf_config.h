// A GGUF file's model settings as the engine's ModelConfig: the `{arch}.*` keys llama.cpp writes
// (embedding_length, block_count, attention.head_count, ...) and the tokenizer's vocabulary size and
// special ids, for the architectures the engine runs (general.architecture llama, qwen2, qwen3).
#pragma once

#include <string>

#include "common/result.h"
#include "runner/model/gguf.h"
#include "runner/model/model_config.h"

namespace runner {

// `file` names the GGUF file in messages.
common::Result<ModelConfig> gguf_model_config(const GgufHeader& h, const std::string& file);

}  // namespace runner
