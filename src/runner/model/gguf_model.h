// A GGUF file as a WeightSource: the settings from its metadata (gguf_config), and its tensors under the
// Hugging Face names bind_weights looks for (blk.3.attn_q.weight is model.layers.3.self_attn.q_proj.weight),
// shaped row-major as safetensors shapes them, viewing the file's bytes in place (block-quantized types
// too). A tensor the engine needs in a type it does not run is an error naming the tensor and the type.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "common/result.h"
#include "runner/model/gguf.h"
#include "runner/model/weight_source.h"

namespace runner {

common::Result<WeightSourcePtr> open_gguf_model(const std::filesystem::path& file);

// The engine's DType for a ggml type it runs; nullopt for the others.
std::optional<DType> engine_dtype(const GgmlType& type);

// The Hugging Face name of a llama.cpp tensor name, "" for a tensor the engine does not use.
std::string hf_tensor_name(const std::string& gguf_name);

// Whether a file starts with GGUF's magic (an Ollama model blob or a .gguf file).
bool is_gguf_file(const std::filesystem::path& file);

}  // namespace runner
