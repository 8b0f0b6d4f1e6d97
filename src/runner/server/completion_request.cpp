#include "runner/server/completion_request.h"

#include <nlohmann/json.hpp>

#include "runner/completion/json_schema_grammar.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace runner_server {

namespace {

using nlohmann::json;

// Reads an optional number; a present value of the wrong type, or one the field cannot hold (2^32+3
// for an int, which would wrap), is an error naming the field.
template <class T>
bool read_number(const json& obj, const char* key, T& out, std::string& problem) {
    if constexpr (std::is_integral_v<T>) {
        long long value = 0;
        if (!read_integer(obj, key, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), value, problem))
            return false;
        out = static_cast<T>(value);
        return true;
    } else {
        if (!obj.contains(key) || obj[key].is_null()) return false;
        const double value = obj[key].is_number() ? obj[key].get<double>() : NAN;
        if (!std::isfinite(value) || std::abs(value) > std::numeric_limits<T>::max()) {
            problem = std::string("\"") + key + "\" must be a number";
            return false;
        }
        out = static_cast<T>(value);
        return true;
    }
}

std::uint64_t random_seed() {
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

std::string read_stops(const json& obj, const char* key, std::vector<std::string>& out) {
    if (!obj.contains(key) || obj[key].is_null()) return {};
    if (!obj[key].is_array()) return std::string("\"") + key + "\" must be an array of strings";
    for (const auto& s : obj[key]) {
        if (!s.is_string()) return std::string("\"") + key + "\" must be an array of strings";
        if (!s.get<std::string>().empty()) out.push_back(s.get<std::string>());
    }
    return {};
}

common::Result<CompletionRequest> parse_mlx(const json& body) {
    CompletionRequest r;
    r.dialect = Dialect::mlx;
    if (!body["Prompt"].is_string()) return common::make_error("\"Prompt\" must be a string");
    r.prompt = body["Prompt"].get<std::string>();
    if (body.contains("Media") && body["Media"].is_array() && !body["Media"].empty())
        return common::make_error("this model takes text only; the request carries images");
    static const json no_options = json::object();
    const json& options = body.contains("Options") && body["Options"].is_object() ? body["Options"] : no_options;
    if (body.contains("Options") && !body["Options"].is_null() && !body["Options"].is_object())
        return common::make_error("\"Options\" must be an object");
    // Go's zero values for what omitempty left out: temperature 0 is greedy, top_k 0 and top_p 0 are off.
    auto& s = r.completion.sampling;
    s.temperature = 0;
    s.top_k = 0;
    s.top_p = 1;
    s.min_p = 0;
    s.repeat_penalty = 1;
    s.penalty_last_n = 0;
    std::string problem;
    read_number(options, "temperature", s.temperature, problem);
    read_number(options, "top_k", s.top_k, problem);
    float top_p = 0;
    // Ollama passes what the user set; above 1 the nucleus keeps every token, as at 1.
    if (read_number(options, "top_p", top_p, problem) && top_p > 0) s.top_p = std::min(top_p, 1.0f);
    read_number(options, "min_p", s.min_p, problem);
    float repeat = 0;
    if (read_number(options, "repeat_penalty", repeat, problem) && repeat > 0) s.repeat_penalty = repeat;
    read_number(options, "repeat_last_n", s.penalty_last_n, problem);
    read_number(options, "presence_penalty", s.presence_penalty, problem);
    read_number(options, "frequency_penalty", s.frequency_penalty, problem);
    long long seed = 0;
    read_number(options, "seed", seed, problem);
    s.seed = seed < 0 ? random_seed() : static_cast<std::uint64_t>(seed);
    int num_predict = 0;
    if (read_number(options, "num_predict", num_predict, problem) && num_predict > 0)
        r.completion.num_predict = num_predict;
    long long num_keep = 0;
    if (read_integer(options, "num_keep", -1, std::numeric_limits<int>::max(), num_keep, problem))
        r.num_keep = static_cast<int>(num_keep);
    if (const auto why = read_stops(options, "stop", r.completion.stop); !why.empty()) problem = why;
    if (!problem.empty()) return common::make_error("Options: " + problem);
    // Ollama's logprobs: the sampled token's, and TopLogprobs (0-20, as Ollama's API allows) most likely.
    if (body.contains("Logprobs") && !body["Logprobs"].is_null() && !body["Logprobs"].is_boolean())
        return common::make_error("\"Logprobs\" must be true or false");
    long long top = 0;
    read_integer(body, "TopLogprobs", 0, 20, top, problem);
    if (!problem.empty()) return common::make_error(problem);
    if (body.contains("Logprobs") && body["Logprobs"].is_boolean() && body["Logprobs"].get<bool>())
        s.logprobs = static_cast<int>(top);
    return r;
}

common::Result<CompletionRequest> parse_llama(const json& body) {
    CompletionRequest r;
    r.dialect = Dialect::llama;
    if (!body["prompt"].is_string()) return common::make_error("\"prompt\" must be a string");
    r.prompt = body["prompt"].get<std::string>();
    // llama-server's defaults for what is not given.
    auto& s = r.completion.sampling;
    s.temperature = 0.8f;
    s.top_k = 40;
    s.top_p = 0.95f;
    s.min_p = 0.05f;
    s.repeat_penalty = 1.0f;
    s.penalty_last_n = 64;
    std::string problem;
    read_number(body, "temperature", s.temperature, problem);
    read_number(body, "top_k", s.top_k, problem);
    read_number(body, "top_p", s.top_p, problem);
    read_number(body, "min_p", s.min_p, problem);
    read_number(body, "repeat_penalty", s.repeat_penalty, problem);
    read_number(body, "repeat_last_n", s.penalty_last_n, problem);
    read_number(body, "presence_penalty", s.presence_penalty, problem);
    read_number(body, "frequency_penalty", s.frequency_penalty, problem);
    long long seed = -1;
    read_number(body, "seed", seed, problem);
    s.seed = seed < 0 ? random_seed() : static_cast<std::uint64_t>(seed);
    read_number(body, "n_predict", r.completion.num_predict, problem);
    long long n_keep = 0;
    if (read_integer(body, "n_keep", -1, std::numeric_limits<int>::max(), n_keep, problem))
        r.num_keep = static_cast<int>(n_keep);
    if (body.contains("stream") && !body["stream"].is_boolean())
        problem = "\"stream\" must be true or false";
    else
        r.stream = body.value("stream", false);
    if (const auto why = read_stops(body, "stop", r.completion.stop); !why.empty()) problem = why;
    if (!problem.empty()) return common::make_error(problem);
    if (s.top_p <= 0 || s.top_p > 1) return common::make_error("\"top_p\" must be in (0, 1]");
    if (s.temperature < 0) return common::make_error("\"temperature\" must not be negative");
    return r;
}

}  // namespace

bool read_integer(const json& obj, const char* key, long long low, long long high, long long& out,
                  std::string& problem) {
    if (!obj.contains(key) || obj[key].is_null()) return false;
    const auto& v = obj[key];
    const bool fits = v.is_number_unsigned()  ? v.get<unsigned long long>() <= static_cast<unsigned long long>(high)
                      : v.is_number_integer() ? v.get<long long>() >= low && v.get<long long>() <= high
                                              : false;
    if (!fits) {
        problem = std::string("\"") + key + "\" must be an integer from " + std::to_string(low) + " to " +
                  std::to_string(high);
        return false;
    }
    out = v.is_number_unsigned() ? static_cast<long long>(v.get<unsigned long long>()) : v.get<long long>();
    return true;
}

namespace {

template <class Json>
common::Result<Json> parse_limited(std::string_view body) {
    try {
        return Json::parse(body, [](int depth, typename Json::parse_event_t, Json&) {
            if (depth > max_json_depth)
                throw std::length_error("the request nests deeper than " + std::to_string(max_json_depth) + " levels");
            return true;
        });
    } catch (const std::length_error& e) {
        return common::make_error(e.what());
    } catch (const nlohmann::json::exception& e) {
        return common::make_error(std::string("the request is not valid JSON: ") + e.what());
    }
}

// The request's structured-output field: Ollama's "Format" ("json" or a schema), llama-server's "json_schema"
// (a schema). Read again in order, since a schema's property order is the order the model writes in.
std::optional<std::string> read_format(std::string_view body, const json& j, CompletionRequest& r) {
    const char* key = r.dialect == Dialect::mlx ? "Format" : "json_schema";
    if (r.dialect == Dialect::llama && j.contains("grammar") && !j["grammar"].is_null() && j["grammar"] != "")
        return "ollama-airllm takes no GBNF \"grammar\"; send the output's JSON Schema as \"json_schema\"";
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    if (r.dialect == Dialect::llama && !j[key].is_object()) return std::string("\"json_schema\" must be an object");
    auto ordered = parse_limited<nlohmann::ordered_json>(body);
    if (!ordered) return ordered.error().message;
    auto grammar = runner::format_grammar((*ordered)[key]);
    if (!grammar) return grammar.error().message;
    if (*grammar) {
        try {
            runner::grammar::Matcher check(**grammar);  // alternatives too ambiguous from the start: refused now
        } catch (const runner::grammar::AmbiguityError& e) {
            return std::string(e.what());
        }
    }
    r.completion.format = std::move(*grammar);
    return std::nullopt;
}

}  // namespace

common::Result<json> parse_request_json(std::string_view body) { return parse_limited<json>(body); }

common::Result<CompletionRequest> parse_completion_request(std::string_view body) {
    auto parsed = parse_request_json(body);
    if (!parsed) return parsed.error();
    const json& j = *parsed;
    if (!j.is_object()) return common::make_error("the request must be a JSON object");
    if (!j.contains("Prompt") && !j.contains("prompt"))
        return common::make_error("the request has no \"Prompt\" (Ollama) or \"prompt\" (llama-server)");
    auto r = j.contains("Prompt") ? parse_mlx(j) : parse_llama(j);
    if (!r) return r;
    if (auto problem = read_format(body, j, *r)) return common::make_error(*problem);
    return r;
}

}  // namespace runner_server
