// The BPE merges a SentencePiece BPE vocabulary implies (GGUF's tokenizer.ggml.model "llama": Llama 2,
// Mistral 7B). SentencePiece keeps pieces and scores, not merges; its encoder joins, again and again, the
// adjacent pair whose joined piece scores highest (as llama.cpp's llm_tokenizer_spm does). Ranking every
// split of every piece by the joined piece's score gives a BPE that joins in that order, which is how
// Hugging Face's converter writes a Llama tokenizer.json.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tokenizer {

// Every split, at a character boundary, of a NORMAL or USER_DEFINED piece into two pieces of the
// vocabulary, ordered by the joined piece's score (highest first), then its id, then the left and right
// pieces' ids. `types` holds llama.cpp's token types (gguf_token_type.h).
std::vector<std::pair<std::string, std::string>> spm_merges(const std::vector<std::string>& pieces,
                                                            const std::vector<double>& scores,
                                                            const std::vector<std::int64_t>& types);

}  // namespace tokenizer
