#include "runner/model/gguf_model.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <map>
#include <utility>

#include "runner/model/gguf_config.h"

namespace runner {

namespace {

namespace fs = std::filesystem;

class GgufModel final : public WeightSource {
  public:
    GgufModel(fs::path path, ModelConfig config, GgufFile file, std::vector<TensorView> tensors)
        : path_(std::move(path)), config_(std::move(config)), file_(std::move(file)), tensors_(std::move(tensors)) {
        for (const auto& t : tensors_) by_name_[t.name] = &t;
    }
    const ModelConfig& config() const override { return config_; }
    const TensorView* tensor(const std::string& name) const override {
        const auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : it->second;
    }
    std::string describe() const override { return path_.string(); }

  private:
    fs::path path_;
    ModelConfig config_;
    GgufFile file_;
    std::vector<TensorView> tensors_;  // what by_name_ points into: never resized after construction
    std::map<std::string, const TensorView*> by_name_;
};

// llama.cpp's per-layer tensor names (llama-arch.cpp's LLM_TENSOR_NAMES) and their Hugging Face twins.
constexpr std::array<std::pair<const char*, const char*>, 14> layer_names{{
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
}};

// Llama 3.1's RoPE scaling in a GGUF file: the rope_freqs tensor's head_dim / 2 divisors.
std::optional<std::string> read_freq_factors(const GgufFile& file, ModelConfig& c) {
    const auto& tensors = file.header().tensors;
    const auto it =
        std::find_if(tensors.begin(), tensors.end(), [](const GgufTensor& t) { return t.name == "rope_freqs.weight"; });
    if (it == tensors.end()) return std::nullopt;
    const auto half = static_cast<std::size_t>(c.head_dim) / 2;
    if (std::string(it->type->name) != "F32" || it->dims.size() != 1 || it->dims[0] != static_cast<std::int64_t>(half))
        return "rope_freqs.weight must be " + std::to_string(half) + " F32 values (head_dim / 2)";
    c.rope_freq_factors.resize(half);
    std::memcpy(c.rope_freq_factors.data(), file.data(*it).data(), half * sizeof(float));
    for (const float f : c.rope_freq_factors)
        if (!(f > 0)) return std::string("rope_freqs.weight holds a factor that is not positive");
    return std::nullopt;
}

}  // namespace

std::optional<DType> engine_dtype(const GgmlType& type) {
    static const std::map<std::string, DType> types{{"F32", DType::f32},   {"F16", DType::f16},   {"BF16", DType::bf16},
                                                    {"Q8_0", DType::q8_0}, {"Q4_0", DType::q4_0}, {"Q4_K", DType::q4_k},
                                                    {"Q5_K", DType::q5_k}, {"Q6_K", DType::q6_k}};
    const auto it = types.find(type.name);
    if (it == types.end()) return std::nullopt;
    return it->second;
}

std::string hf_tensor_name(const std::string& name) {
    if (name == "token_embd.weight") return "model.embed_tokens.weight";
    if (name == "output_norm.weight") return "model.norm.weight";
    if (name == "output.weight") return "lm_head.weight";
    if (name.rfind("blk.", 0) != 0) return "";
    const auto dot = name.find('.', 4);
    if (dot == std::string::npos || dot == 4) return "";
    const std::string layer = name.substr(4, dot - 4), rest = name.substr(dot + 1);
    if (layer.find_first_not_of("0123456789") != std::string::npos) return "";
    for (const auto& [gguf, hf] : layer_names)
        if (rest == gguf) return "model.layers." + layer + "." + hf;
    return "";
}

bool is_gguf_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

common::Result<WeightSourcePtr> open_gguf_model(const fs::path& path) {
    auto file = GgufFile::open(path);
    if (!file) return file.error();
    auto config = gguf_model_config(file->header(), path.string());
    if (!config) return config.error();
    if (auto problem = read_freq_factors(*file, *config)) return common::make_error(path.string() + ": " + *problem);

    std::vector<TensorView> tensors;
    for (const auto& t : file->header().tensors) {
        std::string name = hf_tensor_name(t.name);
        if (name.empty()) continue;
        const auto dtype = engine_dtype(*t.type);
        if (!dtype)
            return common::make_error(path.string() + ": tensor " + t.name + " is " + t.type->name +
                                      ", which the runner does not run (it runs F32, F16, BF16, Q8_0, Q4_0, Q4_K, "
                                      "Q5_K and Q6_K: Ollama's library serves Q4_K_M and Q8_0)");
        const auto bytes = file->data(t);
        TensorView view;
        view.name = std::move(name);
        view.dtype = *dtype;
        view.shape.assign(t.dims.rbegin(), t.dims.rend());  // ggml's dims[0] is the row's length
        view.data = bytes.data();
        view.bytes = bytes.size();
        view.file_offset = t.offset;
        view.file = &file->mapping();
        tensors.push_back(std::move(view));
    }
    return WeightSourcePtr(
        std::make_unique<GgufModel>(path, std::move(config).value(), std::move(file).value(), std::move(tensors)));
}

}  // namespace runner
