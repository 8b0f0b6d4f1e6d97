#include "runner/support/ollama_store.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "runner/model/safetensors.h"
#include "support/digest.h"

namespace test_support {

namespace {

// Writes `data` as a blob and returns its manifest layer.
nlohmann::json add_blob(const TempTree& store, const std::string& data, const std::string& media_type,
                        const std::string& name) {
    const auto hex = sha256_hex(data);
    store.write("blobs/sha256-" + hex, data);
    return {{"mediaType", media_type}, {"digest", "sha256:" + hex}, {"size", data.size()}, {"name", name}};
}

// A one-tensor safetensors file holding `t`'s bytes.
std::string single_tensor_file(const runner::TensorView& t) {
    nlohmann::json header = {
        {t.name, {{"dtype", runner::dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {0, t.bytes}}}}};
    std::string h = header.dump();
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    return out + h + std::string(reinterpret_cast<const char*>(t.data), t.bytes);
}

}  // namespace

void import_model(const TempTree& store, const std::filesystem::path& model_dir, const StoreOptions& options) {
    auto file = runner::SafetensorsFile::open(model_dir / "model.safetensors");
    REQUIRE(file.ok());
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& t : file->tensors())
        layers.push_back(add_blob(store, single_tensor_file(t), "application/vnd.ollama.image.tensor", t.name));
    for (const char* json : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
        if (!options.with_config_json && std::string(json) == "config.json") continue;
        layers.push_back(add_blob(store, read_file(model_dir / json), "application/vnd.ollama.image.json", json));
    }
    const nlohmann::json manifest = {{"schemaVersion", 2},
                                     {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
                                     {"config", add_blob(store, "{\"model_format\":\"safetensors\"}",
                                                         "application/vnd.docker.container.image.v1+json", "")},
                                     {"layers", layers}};
    store.write("manifests/" + options.manifest_path, manifest.dump());
}

void import_gguf(const TempTree& store, const std::filesystem::path& gguf, const StoreOptions& options) {
    const nlohmann::json layers = {
        add_blob(store, read_file(gguf), "application/vnd.ollama.image.model", ""),
        add_blob(store, "{{ .Prompt }}", "application/vnd.ollama.image.template", ""),
        add_blob(store, R"({"stop":["<|eot_id|>"]})", "application/vnd.ollama.image.params", "")};
    const nlohmann::json manifest = {{"schemaVersion", 2},
                                     {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
                                     {"config", add_blob(store, R"({"model_format":"gguf","model_family":"llama"})",
                                                         "application/vnd.docker.container.image.v1+json", "")},
                                     {"layers", layers}};
    store.write("manifests/" + options.manifest_path, manifest.dump());
}

}  // namespace test_support
