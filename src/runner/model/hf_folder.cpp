#include "runner/model/hf_folder.h"

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "common/regular_file.h"

namespace runner {

namespace {

namespace fs = std::filesystem;

class HfFolder final : public WeightSource {
  public:
    HfFolder(fs::path folder, ModelConfig config, std::vector<SafetensorsFile> files)
        : folder_(std::move(folder)), config_(std::move(config)), files_(std::move(files)) {
        for (const auto& f : files_)
            for (const auto& t : f.tensors()) by_name_[t.name] = &t;
    }
    const ModelConfig& config() const override { return config_; }
    const TensorView* tensor(const std::string& name) const override {
        const auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : it->second;
    }
    std::string describe() const override { return folder_.string(); }

  private:
    fs::path folder_;
    ModelConfig config_;
    std::vector<SafetensorsFile> files_;
    std::map<std::string, const TensorView*> by_name_;
};

// The shard files named by model.safetensors.index.json, each once, in order of first mention.
common::Result<std::vector<fs::path>> shards_from_index(const fs::path& index) {
    auto text = common::read_regular_file(index);
    if (!text) return text.error();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(*text);
    } catch (const nlohmann::json::exception& e) {
        return common::make_error(index.string() + ": not valid JSON: " + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
        return common::make_error(index.string() + ": no weight_map object");
    std::vector<fs::path> shards;
    std::set<std::string> seen;
    for (const auto& [tensor, file] : j["weight_map"].items()) {
        if (!file.is_string())
            return common::make_error(index.string() + ": weight_map." + tensor + " is not a file name");
        const auto name = file.get<std::string>();
        if (name.find('/') != std::string::npos || name.rfind("..", 0) == 0)
            return common::make_error(index.string() + ": shard name '" + name + "' leaves the model folder");
        if (seen.insert(name).second) shards.push_back(index.parent_path() / name);
    }
    return shards;
}

}  // namespace

common::Result<WeightSourcePtr> open_hf_folder(const fs::path& folder) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) return common::make_error(folder.string() + ": not a model folder");
    auto config_text = common::read_regular_file(folder / "config.json");
    if (!config_text)
        return common::make_error(folder.string() + ": no config.json (is this a Hugging Face model folder?)");
    std::string generation;
    if (fs::exists(folder / "generation_config.json", ec)) {
        auto g = common::read_regular_file(folder / "generation_config.json");
        if (!g) return g.error();
        generation = std::move(g).value();
    }
    auto config = parse_model_config(*config_text, (folder / "config.json").string(), generation);
    if (!config) return config.error();

    std::vector<fs::path> shards;
    if (fs::exists(folder / "model.safetensors.index.json", ec)) {
        auto listed = shards_from_index(folder / "model.safetensors.index.json");
        if (!listed) return listed.error();
        shards = std::move(listed).value();
    } else if (fs::exists(folder / "model.safetensors", ec)) {
        shards.push_back(folder / "model.safetensors");
    } else {
        return common::make_error(
            folder.string() +
            ": no model.safetensors or model.safetensors.index.json (only safetensors weights are supported)");
    }
    std::vector<SafetensorsFile> files;
    for (const auto& shard : shards) {
        auto file = SafetensorsFile::open(shard);
        if (!file) return file.error();
        files.push_back(std::move(file).value());
    }
    return WeightSourcePtr(std::make_unique<HfFolder>(folder, std::move(config).value(), std::move(files)));
}

}  // namespace runner
