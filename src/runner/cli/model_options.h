// What `info` and `generate` share: opening a model folder with its plan, and byte sizes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "runner/engine/transformer.h"
#include "runner/model/model_weights.h"

namespace runner_cli {

// A whole decimal integer, nothing else in the text.
bool parse_int(const std::string& text, int& out);

// "20GiB", "512MiB", "1.5GB", "1000000" (bytes); nullopt if malformed.
std::optional<std::uint64_t> parse_size(const std::string& text);
std::string format_size(std::uint64_t bytes);

struct OpenModel {
    runner::WeightSourcePtr source;
    runner::ModelWeights weights;
};

// Whether MODEL names a model in Ollama's store rather than a Hugging Face folder.
bool names_ollama_model(const std::string& model);

// Null after printing "<command>: error: <model>: <problem>" to err.
std::optional<OpenModel> open_model(const std::string& path, const char* command, std::ostream& err);

}  // namespace runner_cli
