// Before a model from Ollama's store runs: its blobs against their digests (see model/blob_digest.h).
#pragma once

#include <ostream>
#include <string>

namespace runner_cli {

// True for a Hugging Face folder, or a store model whose blobs match their digests (hashed the first
// time, remembered after; every time with `all`). False after printing one error line to `err`.
// Hashing shows its progress on `err`.
bool check_store_model(const std::string& model, const char* command, bool all, std::ostream& err);

}  // namespace runner_cli
