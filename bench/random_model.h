// Random-weight Llamas with real models' shapes (bf16), written once by the benchmarks into a cache
// folder: realistic layer sizes without downloading a model. Llama 3.2 1B's layers with a 32k
// vocabulary (about 2.5 GB), or Llama 3.1 8B's whole shape (about 16 GB).
#pragma once

#include <filesystem>

namespace bench {

enum class ModelShape { llama_1b, llama_8b };

// Where the benchmarks keep the models they write: ${XDG_CACHE_HOME:-$HOME/.cache}/ollama-airllm-rocm.
std::filesystem::path bench_cache_dir();

std::filesystem::path default_model_dir(
    ModelShape shape = ModelShape::llama_1b);  // ~/.cache/ollama-airllm-rocm/bench-...
void ensure_random_model(const std::filesystem::path& dir, ModelShape shape = ModelShape::llama_1b);

}  // namespace bench
