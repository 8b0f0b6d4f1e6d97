// --tokenizer PATH, shared by tokenize and detokenize: resolves PATH (file, folder or Ollama model
// name) and loads the tokenizer, printing the error the way every command does.
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "runner/tokenizer/tokenizer.h"

namespace runner_cli {

// Null after printing "<command>: error: <file>: <problem>" to err.
std::optional<tokenizer::Tokenizer> load_tokenizer(const std::string& spec, const char* command, std::ostream& err);

}  // namespace runner_cli
