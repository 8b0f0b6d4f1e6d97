// Completion requests in the two dialects the runner speaks: Ollama's MLX runner client (Go field
// names, api.Options with omitempty json tags: a missing option is Go's zero value) and llama-server's
// /completion (lowercase names, llama-server's defaults).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "runner/completion/completion.h"

namespace runner_server {

enum class Dialect { mlx, llama };

struct CompletionRequest {
    Dialect dialect = Dialect::mlx;
    std::string prompt;
    runner::CompletionParams completion;
    int num_keep = 0;    // a prompt too long for the context keeps this many leading tokens; -1 all (no cut)
    bool stream = true;  // llama dialect only; MLX always streams JSONL
};

// The dialect is told by the prompt's key: "Prompt" (MLX) or "prompt" (llama-server).
common::Result<CompletionRequest> parse_completion_request(std::string_view body);

// A request body as JSON. Nesting deeper than max_json_depth is refused while parsing: a copy of a
// value 100,000 levels deep recursed until the stack ran out.
constexpr int max_json_depth = 64;
common::Result<nlohmann::json> parse_request_json(std::string_view body);

// An integer field in [low, high]: absent leaves `out`; a non-integer or one out of range is a problem.
bool read_integer(const nlohmann::json& obj, const char* key, long long low, long long high, long long& out,
                  std::string& problem);

}  // namespace runner_server
