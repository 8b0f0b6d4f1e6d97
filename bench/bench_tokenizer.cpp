// Tokenizer throughput: our C++ tokenizer against transformers.js (@lenml/tokenizers under node, from
// the npm cache tools/install-deps fills) on the same 1 MB mixed corpus, built from
// tests/fixtures/tokenizer/corpus.txt. Both encode line by line without special tokens, in steady
// state (a warm-up pass first), single-threaded. The claim: ours is at least 3x faster.
//
//   bench_tokenizer [--models llama3,qwen3,...] [--seconds S]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runner/tokenizer/tokenizer.h"
#include "runner/tokenizer/utf8.h"

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The corpus cases (valid UTF-8), joined by newlines and repeated up to `target` bytes.
std::string build_corpus(const fs::path& corpus_file, std::size_t target) {
    const std::string data = read_file(corpus_file);
    const std::string sep = "\n~~~~\n";
    std::vector<std::string> cases;
    for (std::size_t start = 0;;) {
        const auto at = data.find(sep, start);
        cases.push_back(
            tokenizer::utf8_sanitize(data.substr(start, at == std::string::npos ? std::string::npos : at - start)));
        if (at == std::string::npos) break;
        start = at + sep.size();
    }
    std::string out;
    while (out.size() < target)
        for (const auto& c : cases) {
            out += c;
            out += '\n';
        }
    return out;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    for (std::size_t start = 0; start < text.size();) {
        const auto nl = text.find('\n', start);
        const auto end = nl == std::string::npos ? text.size() : nl + 1;
        lines.push_back(text.substr(start, end - start));
        start = end;
    }
    return lines;
}

fs::path npm_dir() {
    if (const char* env = std::getenv("OAR_NPM_DIR"); env && *env) return env;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "ollama-airllm-rocm/npm";
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/root") / ".cache/ollama-airllm-rocm/npm";
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> models = {"llama3", "qwen3", "llama2", "gemma3", "deepseek_v3"};
    double seconds = 2.0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--models" && i + 1 < argc) {
            models.clear();
            std::stringstream list(argv[++i]);
            for (std::string m; std::getline(list, m, ',');) models.push_back(m);
        } else if (a == "--seconds" && i + 1 < argc) {
            seconds = std::atof(argv[++i]);
        } else {
            std::cerr << "usage: bench_tokenizer [--models llama3,qwen3,...] [--seconds S]\n";
            return 2;
        }
    }
    const fs::path fixtures = OAR_FIXTURES;
    const std::string corpus = build_corpus(fixtures / "tokenizer/corpus.txt", 1'000'000);
    const fs::path corpus_path = fs::temp_directory_path() / ("bench_tokenizer_" + std::to_string(::getpid()) + ".txt");
    std::ofstream(corpus_path, std::ios::binary) << corpus;
    const auto lines = split_lines(corpus);
    const fs::path npm = npm_dir();
    if (!fs::exists(npm / "node_modules/@lenml/tokenizers/package.json")) {
        std::cerr << "bench_tokenizer: transformers.js is not installed in " << npm.string()
                  << ": run tools/install-deps\n";
        fs::remove(corpus_path);
        return 1;
    }

    std::printf("tokenizer encode throughput, %.2f MB mixed corpus (%zu lines), one thread, no special tokens\n",
                static_cast<double>(corpus.size()) / 1e6, lines.size());
    std::printf("%-12s %10s %12s %14s %8s %s\n", "model", "tokens", "ours MB/s", "transformers.js", "ratio",
                "(need >= 3x)");
    int failures = 0;
    for (const auto& model : models) {
        const fs::path dir = npm_dir() / "node_modules/@lenml" / ("tokenizer-" + model) / "models";
        auto tok = tokenizer::Tokenizer::load(dir / "tokenizer.json", dir / "tokenizer_config.json");
        if (!tok) {
            std::cerr << "bench_tokenizer: " << tok.error().message << '\n';
            return 1;
        }
        std::size_t tokens = 0;
        for (const auto& line : lines) tokens += tok->encode(line, false).size();  // warm-up
        const auto t0 = std::chrono::steady_clock::now();
        int runs = 0;
        double elapsed = 0;
        do {
            for (const auto& line : lines) tokens += tok->encode(line, false).size();
            ++runs;
            elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        } while (elapsed < seconds);
        const double ours = static_cast<double>(corpus.size()) / 1e6 / (elapsed / runs);
        const std::string command = "node '" + std::string(OAR_TOOLS) + "/tokenizer_ref.mjs' bench --npm-dir '" +
                                    npm.string() + "' --model " + model + " --tokenizer-dir '" + dir.string() +
                                    "' --text '" + corpus_path.string() + "' --seconds " + std::to_string(seconds);
        std::string output;
        if (FILE* pipe = ::popen(command.c_str(), "r")) {
            char buffer[4096];
            for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
            if (::pclose(pipe) != 0) output.clear();
        }
        const auto js = nlohmann::json::parse(output, nullptr, false);
        if (js.is_discarded() || !js.contains("mb_per_s")) {
            std::printf("%-12s %10zu %12.2f %14s\n", model.c_str(), tokens / static_cast<std::size_t>(runs + 1), ours,
                        "node failed");
            ++failures;
            continue;
        }
        const double theirs = js["mb_per_s"].get<double>();
        const double ratio = ours / theirs;
        failures += ratio < 3.0;
        std::printf("%-12s %10zu %12.2f %14.2f %7.1fx %s\n", model.c_str(), tokens / static_cast<std::size_t>(runs + 1),
                    ours, theirs, ratio, ratio >= 3.0 ? "ok" : "BELOW 3x");
    }
    fs::remove(corpus_path);
    return failures == 0 ? 0 : 1;
}
