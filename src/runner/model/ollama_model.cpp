#include "runner/model/ollama_model.h"

#include <map>

#include "common/regular_file.h"
#include "runner/model/gguf_model.h"
#include "runner/model/ollama_manifest.h"

namespace runner {

namespace {

class OllamaModel final : public WeightSource {
  public:
    OllamaModel(std::string described_as, ModelConfig config, std::vector<SafetensorsFile> blobs)
        : described_as_(std::move(described_as)), config_(std::move(config)), blobs_(std::move(blobs)) {
        for (const auto& b : blobs_)
            for (const auto& t : b.tensors()) by_name_[t.name] = &t;
    }
    const ModelConfig& config() const override { return config_; }
    const TensorView* tensor(const std::string& name) const override {
        const auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : it->second;
    }
    std::string describe() const override { return described_as_; }

  private:
    std::string described_as_;
    ModelConfig config_;
    std::vector<SafetensorsFile> blobs_;
    std::map<std::string, const TensorView*> by_name_;
};

common::Result<std::string> read_blob(const OllamaLayer& layer, const OllamaManifest& m) {
    if (!std::filesystem::exists(layer.blob))
        return common::make_error(layer.blob.string() + ": blob of " + layer.name + " listed in " + m.file.string() +
                                  " is missing");
    return common::read_regular_file(layer.blob);
}

}  // namespace

common::Result<WeightSourcePtr> open_ollama_model(const std::string& name, const std::filesystem::path& ollama_models) {
    auto m = read_ollama_manifest(name, ollama_models);
    if (!m) return m.error();
    // What `ollama pull` gives: one GGUF blob.
    for (const auto& layer : m->layers) {
        if (layer.media_type != ollama_model_media_type) continue;
        if (!std::filesystem::exists(layer.blob))
            return common::make_error(layer.blob.string() + ": the model blob listed in " + m->file.string() +
                                      " is missing");
        auto source = open_gguf_model(layer.blob);
        if (!source) return common::make_error(source.error().message + " (the model blob of " + m->described_as + ")");
        return source;
    }
    const OllamaLayer* config_layer = m->json_layer("config.json");
    if (!config_layer)
        return common::make_error(m->file.string() + ": " + m->described_as +
                                  " has neither a model (GGUF) layer nor a config.json layer");
    auto config_text = read_blob(*config_layer, *m);
    if (!config_text) return config_text.error();
    std::string generation;
    if (const OllamaLayer* g = m->json_layer("generation_config.json")) {
        auto text = read_blob(*g, *m);
        if (!text) return text.error();
        generation = std::move(text).value();
    }
    auto config = parse_model_config(*config_text, m->described_as + " config.json", generation);
    if (!config) return config.error();

    std::vector<SafetensorsFile> blobs;
    for (const auto& layer : m->layers) {
        if (layer.media_type != ollama_tensor_media_type) continue;
        auto file = SafetensorsFile::open(layer.blob);
        if (!file)
            return common::make_error(file.error().message + " (tensor blob " + layer.name + " of " + m->described_as +
                                      ")");
        blobs.push_back(std::move(file).value());
    }
    if (blobs.empty()) return common::make_error(m->file.string() + ": " + m->described_as + " has no tensor layers");
    return WeightSourcePtr(std::make_unique<OllamaModel>(m->described_as, std::move(config).value(), std::move(blobs)));
}

}  // namespace runner
