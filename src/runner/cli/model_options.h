// What the commands share: opening a model by folder or Ollama name, and reading counts and sizes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "runner/engine/byte_size.h"
#include "runner/engine/transformer.h"
#include "runner/model/model_weights.h"

namespace runner_cli {

// A whole decimal integer, nothing else in the text.
bool parse_int(const std::string& text, int& out);

using runner::format_size;
using runner::parse_size;

struct OpenModel {
    runner::WeightSourcePtr source;
    runner::ModelWeights weights;
};

// Whether MODEL names a model in Ollama's store rather than a Hugging Face folder.
bool names_ollama_model(const std::string& model);

// Null after printing "<command>: error: <model>: <problem>" to err.
std::optional<OpenModel> open_model(const std::string& path, const char* command, std::ostream& err);

}  // namespace runner_cli
