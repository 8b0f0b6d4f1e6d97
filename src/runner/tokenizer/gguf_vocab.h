// A tokenizer from a GGUF file's tokenizer.ggml.* metadata, as llama.cpp's converter writes it from a
// Hugging Face tokenizer: the vocabulary in id order, each token's type, the BPE merges, the
// pre-tokenizer's name (tokenizer.ggml.pre) and the special ids. It is turned back into the tokenizer.json
// it came from and loaded through the same pipeline, so GGUF and safetensors models tokenize alike.
// Byte-level BPE vocabularies (tokenizer.ggml.model "gpt2": Llama 3, Qwen2/2.5/3, ...) with the
// pre-tokenizers in the table, and SentencePiece BPE ones ("llama": Llama 2, Mistral 7B), whose merges
// come from the pieces' scores.
#pragma once

#include <string>

#include "common/result.h"
#include "runner/model/gguf.h"
#include "runner/tokenizer/tokenizer.h"

namespace tokenizer {

// The tokenizer.json text; `file` names the GGUF file in messages.
common::Result<std::string> gguf_tokenizer_json(const runner::GgufHeader& h, const std::string& file);

common::Result<Tokenizer> load_gguf_tokenizer(const runner::GgufHeader& h, const std::string& file);

}  // namespace tokenizer
