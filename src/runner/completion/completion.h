// One completion, as both the CLI and the server run it: the prompt's ids through the model, sampled
// token by token, decoded into whole UTF-8 characters, cut at stop strings, within the token limit and
// the context. Pieces of text go to a callback as they are ready; the text of a stop string never does.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/completion/grammar.h"
#include "runner/engine/kv_sequence.h"
#include "runner/engine/sampling.h"
#include "runner/tokenizer/tokenizer.h"

namespace runner {

struct CompletionParams {
    SamplingParams sampling;
    int num_predict = -1;  // tokens at most; negative: until the context is full
    std::vector<std::string> stop;
    // Structured output (Ollama's `format`, json_schema_grammar): only tokens that continue it are sampled.
    std::optional<grammar::Grammar> format;
};

enum class Finish {
    eos,          // the model ended its answer
    stop_string,  // a stop string appeared (not sent)
    length,       // num_predict tokens
    context,      // the context is full
    client_left,  // the callback refused a piece
};
// As Ollama and llama.cpp name it: "stop", "length" or "context".
const char* finish_name(Finish finish);
// Ollama's "length" (an MLX runner's DoneReason 1): the answer was cut, not ended.
inline bool finish_is_cut(Finish finish) { return finish == Finish::length || finish == Finish::context; }

struct CompletionOutcome {
    std::vector<std::int32_t> ids;  // generated, without the prompt or an EOS id
    Finish finish = Finish::length;
    std::size_t prompt_tokens = 0;  // run through the model: the prompt less what the cache held
    std::size_t prompt_reused = 0;  // leading prompt tokens the cache already held
    double prompt_seconds = 0;
    double decode_seconds = 0;
};

// A generated token's log-probability and those of the most likely tokens at its place (SamplingParams::logprobs),
// each token's text decoded alone, as Ollama's runners report them.
struct TokenLogprob {
    std::string token;
    double logprob = 0;
};
struct Logprob {
    TokenLogprob token;
    std::vector<TokenLogprob> top;
};

// Text ready to send, with the log-probabilities of the tokens generated since the last piece, when asked
// for. The last piece may carry log-probabilities and no text; those still waiting when a stop string ends
// the answer are dropped with the text held back.
struct Piece {
    std::string text;
    std::vector<Logprob> logprobs;
};

// Returns false when whoever reads the text has gone; generation then ends.
using PieceFn = std::function<bool(const Piece&)>;

// `tok` may be null (a model without tokenizer.json, prompt given as ids): then no text is made and
// stop strings do not apply. The prompt's prefix that `sequence` already holds is not run again.
// Errors: the model's, a token the tokenizer cannot decode, or a format without a tokenizer.
common::Result<CompletionOutcome> complete(KvSequence& sequence, const tokenizer::Tokenizer* tok,
                                           std::span<const std::int32_t> prompt, const CompletionParams& params,
                                           const PieceFn& on_piece);

}  // namespace runner
