// The one interface through which the engine sees weights: tensors by name. A Hugging Face folder
// implements it here; an Ollama model (a blob per tensor) and GGUF plug in beside it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runner/model/model_config.h"
#include "runner/model/safetensors.h"

namespace runner {

class WeightSource {
  public:
    virtual ~WeightSource() = default;
    virtual const ModelConfig& config() const = 0;
    // nullptr when the source has no tensor of that name.
    virtual const TensorView* tensor(const std::string& name) const = 0;
    // Where the model came from, for messages ("/models/llama-3.2-1b").
    virtual std::string describe() const = 0;
};

using WeightSourcePtr = std::unique_ptr<WeightSource>;

}  // namespace runner
