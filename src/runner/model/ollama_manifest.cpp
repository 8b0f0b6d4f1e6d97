#include "runner/model/ollama_manifest.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <optional>

#include "common/regular_file.h"

namespace runner {

namespace fs = std::filesystem;

namespace {

struct ModelName {
    std::string host = "registry.ollama.ai";
    std::string ns = "library";
    std::string model;
    std::string tag = "latest";
};

std::optional<ModelName> parse_name(const std::string& spec) {
    ModelName name;
    std::string rest = spec;
    if (const auto colon = rest.rfind(':'); colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
        name.tag = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
    }
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
        const auto slash = rest.find('/', start);
        parts.push_back(rest.substr(start, slash - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    if (parts.size() > 3) return std::nullopt;
    name.model = parts.back();
    if (parts.size() >= 2) name.ns = parts[parts.size() - 2];
    if (parts.size() == 3) name.host = parts[0];
    for (const auto* part : {&name.host, &name.ns, &name.model, &name.tag})
        if (part->empty() || *part == "." || *part == ".." || part->find('\\') != std::string::npos)
            return std::nullopt;
    return name;
}

// Manifests and blobs are read only inside the models folder's manifests/ and blobs/ (each may be a
// link to another drive as a whole): a link planted inside them that leads elsewhere (to
// /etc/shadow, when the runner runs as root) is refused, not followed.
std::optional<std::string> leaves(const fs::path& path, const fs::path& folder) {
    std::error_code ec;
    const auto root = fs::weakly_canonical(folder, ec);
    if (ec) return std::nullopt;
    const auto resolved = fs::weakly_canonical(path, ec);
    if (ec) return std::nullopt;
    const auto rel = resolved.lexically_relative(root);
    if (!rel.empty() && *rel.begin() != "..") return std::nullopt;
    return path.string() + " leads out of " + folder.string() + " (to " + resolved.string() + "); refusing to read it";
}

}  // namespace

const OllamaLayer* OllamaManifest::json_layer(const std::string& name) const {
    for (const auto& l : layers)
        if (l.media_type == ollama_json_media_type && l.name == name) return &l;
    return nullptr;
}

fs::path default_ollama_models() {
    if (const char* env = std::getenv("OLLAMA_MODELS"); env && *env) return env;
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".ollama" / "models";
    return "/var/lib/ollama/models";
}

common::Result<std::vector<ManifestEntry>> parse_ollama_manifest(std::string_view text, const std::string& file) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        return common::make_error(file + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array())
        return common::make_error(file + ": no \"layers\" array");
    std::vector<ManifestEntry> entries;
    for (const auto& layer : j["layers"]) {
        if (!layer.is_object()) return common::make_error(file + ": a layer is not an object");
        for (const char* key : {"digest", "mediaType", "name"})
            if (layer.contains(key) && !layer[key].is_string())
                return common::make_error(file + ": a layer's \"" + key + "\" is not a string");
        const auto digest = layer.value("digest", "");
        // The blob's file name is made from it: nothing but the hex digits Ollama writes.
        const bool hex = digest.size() == 71 && digest.rfind("sha256:", 0) == 0 &&
                         digest.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
        if (!hex)
            return common::make_error(file + ": layer digest \"" + digest + "\" is not sha256:<64 lowercase hex>");
        ManifestEntry entry;
        entry.media_type = layer.value("mediaType", "");
        entry.name = layer.value("name", "");
        entry.digest_hex = digest.substr(7);
        if (layer.contains("size") && layer["size"].is_number_unsigned())
            entry.size = layer["size"].get<std::uint64_t>();
        entries.push_back(std::move(entry));
    }
    return entries;
}

common::Result<OllamaManifest> read_ollama_manifest(const std::string& spec, const fs::path& models) {
    const auto name = parse_name(spec);
    if (!name) return common::make_error(spec + ": not a file, a folder or an Ollama model name");
    const fs::path manifest = models / "manifests" / name->host / name->ns / name->model / name->tag;
    if (const auto why = leaves(manifest, models / "manifests")) return common::make_error(*why);
    std::error_code ec;
    if (!fs::is_regular_file(manifest, ec))
        return common::make_error(spec + ": no such file or folder, and no Ollama model (looked for " +
                                  manifest.string() + "; set OLLAMA_MODELS to the models folder)");
    const auto text = common::read_regular_file(manifest);
    if (!text) return text.error();
    auto entries = parse_ollama_manifest(*text, manifest.string());
    if (!entries) return entries.error();
    OllamaManifest m;
    m.file = manifest;
    m.described_as = "Ollama model " + name->ns + "/" + name->model + ":" + name->tag;
    for (auto& entry : *entries) {
        OllamaLayer l;
        l.media_type = std::move(entry.media_type);
        l.name = std::move(entry.name);
        l.blob = models / "blobs" / ("sha256-" + entry.digest_hex);
        l.size = entry.size;
        if (const auto why = leaves(l.blob, models / "blobs")) return common::make_error(*why);
        m.layers.push_back(std::move(l));
    }
    return m;
}

}  // namespace runner
