// llama.cpp's token types (llama_token_type), as a GGUF's tokenizer.ggml.token_type holds them.
#pragma once

#include <cstdint>

namespace tokenizer::gguf_token_type {

constexpr std::int64_t normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6;

}  // namespace tokenizer::gguf_token_type
