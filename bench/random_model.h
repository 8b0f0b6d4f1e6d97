// A random-weight Llama with Llama 3.2 1B's layer shapes (32k vocabulary, bf16), written once by the
// benchmarks into a cache folder: realistic layer sizes without downloading a model.
#pragma once

#include <filesystem>

namespace bench {

std::filesystem::path default_model_dir();  // ~/.cache/ollama-airllm-rocm/bench-llama-1b-shape
void ensure_random_model(const std::filesystem::path& dir);

}  // namespace bench
