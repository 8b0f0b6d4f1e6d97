// The tokenizer corpus and its references, for the conformance tests: cases of
// tests/fixtures/tokenizer/corpus.txt, goldens from Hugging Face tokenizers, transformers.js output
// (tools/tokenizer_ref.mjs) and the recorded disagreements between the references.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runner/tokenizer/vocab.h"

namespace test_tokenizer {

std::filesystem::path fixtures();  // tests/fixtures/tokenizer
std::filesystem::path model_dir(const std::string& model);

// Cases separated by "\n~~~~\n", as raw bytes (some are not valid UTF-8 on purpose).
std::vector<std::string> read_corpus();

nlohmann::json read_json(const std::filesystem::path& path);
std::vector<tokenizer::TokenId> ids_of(const nlohmann::json& array);

// Where the npm packages live: $OAR_NPM_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/ollama-airllm-rocm/npm
// (the same rule as tools/install-deps).
std::filesystem::path npm_dir();

// The full path of a program found in $PATH, or "" (run_process does not search PATH).
std::string find_program(const std::string& name);

// A recorded disagreement for (model, case, field), if any.
std::optional<nlohmann::json> disagreement(const nlohmann::json& table, const std::string& model, std::size_t index,
                                           const std::string& field);

}  // namespace test_tokenizer
