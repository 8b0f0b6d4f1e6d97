// ollama-airllm generate MODEL (-p TEXT | --prompt-ids 1,2,3) [-n N] [sampling flags] [--stop S]...
//                     [--format F] [--ctx N] [engine options] [--json]
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/regular_file.h"
#include "runner/cli/commands.h"
#include "runner/cli/engine_flags.h"
#include "runner/cli/model_options.h"
#include "runner/cli/store_check.h"
#include "runner/completion/completion.h"
#include "runner/completion/json_schema_grammar.h"
#include "runner/tokenizer/source.h"
#include "runner/tokenizer/tokenizer.h"

namespace runner_cli {

namespace {

constexpr const char* generate_usage = R"(usage: ollama-airllm generate MODEL (-p TEXT | --prompt-ids 1,2,3) [options]

Runs a model (a Hugging Face folder, a GGUF file or an Ollama model name) on the CPU or a GPU and streams the
generated text to stdout, with prompt and decode speed at the end. With --json, prints one JSON
object instead (ids, text, timings, device).

  -n, --num-predict N       tokens to generate (default 128)
  --temperature T           0 is greedy (default 0.8)
  --top-k K  --top-p P  --min-p P
  --repeat-penalty R  --presence-penalty P  --frequency-penalty F  --repeat-last-n N
  --seed S                  same seed, same output
  --stop TEXT               stop when the output contains TEXT (repeatable)
  --format FORMAT           structured output, as Ollama's format: json (any object) or a JSON Schema,
                            inline or @FILE
  --ctx N                   context length (default 2048, at most the model's)
)";

template <class T>
bool parse_number(const std::string& text, T& out) {
    if constexpr (std::is_floating_point_v<T>) {
        try {
            std::size_t used = 0;
            out = static_cast<T>(std::stod(text, &used));
            return used == text.size();
        } catch (const std::exception&) {
            return false;
        }
    } else {
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
        return ec == std::errc() && end == text.data() + text.size();
    }
}

bool parse_ids(const std::string& text, std::vector<std::int32_t>& ids) {
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        std::int32_t id = 0;
        if (!parse_number(text.substr(start, comma - start), id) || id < 0) return false;
        ids.push_back(id);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return !ids.empty();
}

// --format's value: "json", a schema's text, or @FILE holding either.
common::Result<std::optional<runner::grammar::Grammar>> read_format(const std::string& value) {
    const bool from_file = !value.empty() && value.front() == '@';
    std::string text = value;
    if (from_file) {
        auto file = common::read_regular_file(value.substr(1));
        if (!file) return file.error();
        text = std::move(*file);
    }
    const std::string where = from_file ? value.substr(1) : std::string("--format");
    const auto first = text.find_first_not_of(" \t\r\n"), last = text.find_last_not_of(" \t\r\n");
    if (first != std::string::npos && text.substr(first, last + 1 - first) == "json")  // a file's line ends too
        return runner::format_grammar("json");
    nlohmann::ordered_json parsed;
    try {
        parsed = nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        return common::make_error(where + ": not json and not a JSON Schema (" + e.what() + ")");
    }
    auto grammar = runner::format_grammar(parsed);
    if (!grammar) return common::make_error(where + ": " + grammar.error().message);
    return grammar;
}

}  // namespace

int run_generate(const std::vector<std::string>& args, CommandIo io) {
    std::string model, prompt_text;
    std::vector<std::int32_t> prompt_ids;
    std::vector<std::string> stops;
    int n_predict = 128, n_ctx = 0;
    EngineFlags engine_flags;
    bool json = false, have_prompt = false;
    runner::SamplingParams sp;
    std::optional<runner::grammar::Grammar> format;
    const auto usage_error = [&](const std::string& why) {
        io.err << "ollama-airllm generate: " << why << "\n(ollama-airllm generate --help lists the options)\n";
        return exit_usage;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        const bool has_value = i + 1 < args.size();
        const auto number = [&](auto& out) {
            if (!has_value || !parse_number(args[i + 1], out)) return false;
            ++i;
            return true;
        };
        if (auto taken = parse_engine_option(args, i, engine_flags)) {
            if (!*taken) return usage_error(taken->error().message);
        } else if (a == "-h" || a == "--help") {
            io.out << generate_usage << engine_options_usage;
            return exit_ok;
        } else if ((a == "-p" || a == "--prompt") && has_value) {
            prompt_text = args[++i];
            have_prompt = true;
        } else if (a == "--prompt-ids" && has_value) {
            if (!parse_ids(args[++i], prompt_ids))
                return usage_error("--prompt-ids wants comma-separated token ids, got '" + args[i] + "'");
            have_prompt = true;
        } else if (a == "--stop" && has_value) {
            stops.push_back(args[++i]);
        } else if (a == "--format" && has_value) {
            auto read = read_format(args[++i]);
            if (!read) return usage_error(read.error().message);
            format = std::move(*read);
        } else if (a == "--json") {
            json = true;
        } else if (((a == "-n" || a == "--num-predict") && number(n_predict)) || (a == "--ctx" && number(n_ctx)) ||
                   (a == "--temperature" && number(sp.temperature)) || (a == "--top-k" && number(sp.top_k)) ||
                   (a == "--top-p" && number(sp.top_p)) || (a == "--min-p" && number(sp.min_p)) ||
                   (a == "--repeat-penalty" && number(sp.repeat_penalty)) ||
                   (a == "--presence-penalty" && number(sp.presence_penalty)) ||
                   (a == "--frequency-penalty" && number(sp.frequency_penalty)) ||
                   (a == "--repeat-last-n" && number(sp.penalty_last_n)) || (a == "--seed" && number(sp.seed))) {
        } else if (model.empty() && !a.empty() && a.front() != '-') {
            model = a;
        } else {
            return usage_error("unknown or incomplete argument '" + a + "'");
        }
    }
    if (model.empty()) return usage_error("which model? (ollama-airllm generate MODEL_FOLDER -p TEXT)");
    if (!have_prompt) return usage_error("no prompt: give -p TEXT or --prompt-ids 1,2,3");
    if (n_predict < 0 || n_ctx < 0 || sp.temperature < 0 || sp.top_p <= 0 || sp.top_p > 1 || sp.repeat_penalty <= 0)
        return usage_error("a sampling or size value is out of range");

    if (!check_store_model(model, "generate", false, io.err)) return exit_usage;
    auto m = open_model(model, "generate", io.err);
    if (!m) return exit_usage;
    // The tokenizer beside the weights (tokenizer.json, or the GGUF's vocabulary); a prompt given as ids
    // runs without one.
    std::optional<tokenizer::Tokenizer> tok;
    auto vocabulary = tokenizer::load_tokenizer(model, tokenizer::default_ollama_models());
    if (vocabulary) tok = std::move(vocabulary).value();
    if (prompt_ids.empty()) {
        if (!tok) return usage_error(vocabulary.error().message + ": give the prompt as --prompt-ids");
        for (const auto id : tok->encode(prompt_text)) prompt_ids.push_back(id);
    }
    const auto config = m->source->config();
    // The KV cache is allocated for the whole context: a context beyond the model's is refused before
    // that, not met with std::bad_alloc.
    if (n_ctx > config.max_position)
        return usage_error("--ctx " + std::to_string(n_ctx) + " is more than the model's context of " +
                           std::to_string(config.max_position) + " tokens (max_position_embeddings)");
    if (n_ctx == 0) n_ctx = std::min(2048, config.max_position);
    auto options = resolve_engine_options(engine_flags);
    auto engine = options ? runner::make_engine(*m->source, std::move(m->weights), n_ctx, *options)
                          : common::Result<runner::Engine>(options.error());
    if (!engine) {
        io.err << "ollama-airllm generate: error: " << engine.error().message << '\n';
        return exit_failed;
    }
    if (auto loaded = engine->model->load([](std::size_t, std::size_t) { return true; }); !loaded) {
        io.err << "ollama-airllm generate: error: " << loaded.error().message << '\n';
        return exit_failed;
    }
    std::string text;
    runner::CompletionParams params{sp, n_predict, stops, std::move(format)};
    runner::KvSequence sequence(*engine->model);
    const auto done =
        runner::complete(sequence, tok ? &*tok : nullptr, prompt_ids, params, [&](const runner::Piece& piece) {
            text += piece.text;
            if (!json) io.out << piece.text << std::flush;
            return true;
        });
    if (!done) {
        io.err << "ollama-airllm generate: error: " << done.error().message << '\n';
        return exit_failed;
    }
    const double prompt_tps = static_cast<double>(prompt_ids.size()) / std::max(done->prompt_seconds, 1e-9);
    const double decode_tps =
        done->ids.size() > 1 ? static_cast<double>(done->ids.size() - 1) / std::max(done->decode_seconds, 1e-9) : 0;
    const std::string reason = runner::finish_name(done->finish);
    if (json) {
        const nlohmann::json doc = {{"ids", done->ids},
                                    {"text", tok ? nlohmann::json(text) : nlohmann::json(nullptr)},
                                    {"prompt_tokens", prompt_ids.size()},
                                    {"prompt_seconds", done->prompt_seconds},
                                    {"decode_seconds", done->decode_seconds},
                                    {"prompt_tokens_per_second", prompt_tps},
                                    {"decode_tokens_per_second", decode_tps},
                                    {"bytes_streamed_per_token", engine->streamed_bytes},
                                    {"device", engine->description},
                                    {"done_reason", reason}};
        io.out << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        return exit_ok;
    }
    char line[256];
    std::snprintf(line, sizeof line,
                  "\n\nprompt: %zu tokens, %.1f tokens/s; decode: %zu tokens, %.1f tokens/s; stopped: %s\n",
                  prompt_ids.size(), prompt_tps, done->ids.size(), decode_tps, reason.c_str());
    io.err << line << "on " << engine->description << '\n';
    if (const auto summary = engine->model->load_summary(); !summary.empty()) io.err << summary << '\n';
    return exit_ok;
}

}  // namespace runner_cli
