#include "runner/model/model_config.h"

#include <nlohmann/json.hpp>

#include <array>

namespace runner {

namespace {

constexpr std::array architectures = {
    ArchitectureTraits{"LlamaForCausalLM", "llama", false, false, RopePairs::adjacent},
    ArchitectureTraits{"MistralForCausalLM", "llama", false, false, RopePairs::adjacent},
    ArchitectureTraits{"Qwen2ForCausalLM", "qwen2", true, false, RopePairs::half},
    ArchitectureTraits{"Qwen3ForCausalLM", "qwen3", false, true, RopePairs::half},
};

using nlohmann::json;

void read_ids(const json& value, std::vector<std::int32_t>& out) {
    if (value.is_number_integer())
        out.push_back(value.get<std::int32_t>());
    else if (value.is_array())
        for (const auto& v : value)
            if (v.is_number_integer()) out.push_back(v.get<std::int32_t>());
}

// An optional key of one JSON type: absent or null leaves `out`; another type is a problem naming the
// key, where nlohmann's value() would throw a message that names neither key nor file.
std::string read_field(const json& obj, const char* key, bool& out) {
    if (!obj.contains(key) || obj[key].is_null()) return "";
    if (!obj[key].is_boolean()) return std::string("\"") + key + "\" must be true or false";
    out = obj[key].get<bool>();
    return "";
}

std::string read_field(const json& obj, const char* key, float& out) {
    if (!obj.contains(key) || obj[key].is_null()) return "";
    if (!obj[key].is_number()) return std::string("\"") + key + "\" must be a number";
    out = obj[key].get<float>();
    return "";
}

std::string read_field(const json& obj, const char* key, std::string& out) {
    if (!obj.contains(key) || obj[key].is_null()) return "";
    if (!obj[key].is_string()) return std::string("\"") + key + "\" must be a string";
    out = obj[key].get<std::string>();
    return "";
}

}  // namespace

const ArchitectureTraits* find_architecture(const std::string& name) {
    for (const auto& a : architectures)
        if (name == a.name) return &a;
    return nullptr;
}

const ArchitectureTraits* find_gguf_architecture(const std::string& gguf_name) {
    for (const auto& a : architectures)
        if (gguf_name == a.gguf_name) return &a;
    return nullptr;
}

std::string complete_shape(ModelConfig& c, const ShapeNames& names) {
    if (c.n_head_kv == 0) c.n_head_kv = c.n_head;
    if (c.head_dim == 0) {
        if (c.n_embd % c.n_head != 0)
            return std::string(names.n_embd) + " is not a multiple of " + names.n_head + " and " + names.head_dim +
                   " is not given";
        c.head_dim = c.n_embd / c.n_head;
    }
    if (c.n_head % c.n_head_kv != 0) return std::string(names.n_head) + " is not a multiple of " + names.n_head_kv;
    if (c.head_dim % 2 != 0) return std::string(names.head_dim) + " must be even for RoPE";
    return "";
}

std::string supported_architectures() {
    std::string out;
    for (const auto& a : architectures) out += (out.empty() ? "" : ", ") + std::string(a.name);
    return out;
}

common::Result<ModelConfig> parse_model_config(const std::string& config_json, const std::string& file,
                                               const std::string& generation_json) {
    const auto bad = [&](const std::string& why) { return common::make_error(file + ": " + why); };
    json j;
    try {
        j = json::parse(config_json);
    } catch (const json::exception& e) {
        return bad(std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object()) return bad("not a JSON object");
    if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
        !j["architectures"][0].is_string())
        return bad("no \"architectures\" list");
    const auto arch_name = j["architectures"][0].get<std::string>();
    const auto* arch = find_architecture(arch_name);
    if (!arch)
        return bad("architecture " + arch_name + " is not supported (supported: " + supported_architectures() + ")");

    ModelConfig c;
    c.arch = *arch;
    const auto int_field = [&](const char* key, int& out, bool required) -> std::string {
        if (!j.contains(key) || j[key].is_null()) return required ? std::string("missing \"") + key + "\"" : "";
        if (!j[key].is_number_integer() || j[key].get<std::int64_t>() <= 0 || j[key].get<std::int64_t>() > (1 << 30))
            return std::string("\"") + key + "\" must be a positive integer";
        out = j[key].get<int>();
        return "";
    };
    for (const auto& [key, out, required] : {std::tuple{"hidden_size", &c.n_embd, true},
                                             {"num_hidden_layers", &c.n_layer, true},
                                             {"num_attention_heads", &c.n_head, true},
                                             {"intermediate_size", &c.n_ff, true},
                                             {"vocab_size", &c.n_vocab, true},
                                             {"max_position_embeddings", &c.max_position, false},
                                             {"num_key_value_heads", &c.n_head_kv, false},
                                             {"head_dim", &c.head_dim, false}}) {
        if (const auto why = int_field(key, *out, required); !why.empty()) return bad(why);
    }
    if (const auto why = complete_shape(c, {"num_attention_heads", "num_key_value_heads", "head_dim", "hidden_size"});
        !why.empty())
        return bad(why);
    if (c.max_position == 0) c.max_position = 4096;
    if (j.contains("rms_norm_eps") && j["rms_norm_eps"].is_number()) c.rms_eps = j["rms_norm_eps"].get<float>();
    if (!(c.rms_eps > 0 && c.rms_eps < 1)) return bad("rms_norm_eps must be in (0, 1)");
    if (const auto why = read_field(j, "tie_word_embeddings", c.tie_embeddings); !why.empty()) return bad(why);

    // transformers 4.x writes rope_theta and rope_scaling; 5.x folds both into rope_parameters.
    json rope = json::object();
    if (j.contains("rope_parameters") && j["rope_parameters"].is_object())
        rope = j["rope_parameters"];
    else if (j.contains("rope_scaling") && j["rope_scaling"].is_object())
        rope = j["rope_scaling"];
    if (j.contains("rope_theta") && j["rope_theta"].is_number()) c.rope_theta = j["rope_theta"].get<float>();
    if (rope.contains("rope_theta") && rope["rope_theta"].is_number()) c.rope_theta = rope["rope_theta"].get<float>();
    if (!(c.rope_theta > 0)) return bad("rope_theta must be positive");
    std::string type = "default";
    for (const char* key : {"type", "rope_type"})
        if (const auto why = read_field(rope, key, type); !why.empty()) return bad("rope scaling " + why);
    if (type == "llama3") {
        c.rope_scaling.type = "llama3";
        c.rope_scaling.factor = 8.0f;
        c.rope_scaling.low_freq_factor = 1.0f;
        c.rope_scaling.high_freq_factor = 4.0f;
        c.rope_scaling.original_max_position = 8192.0f;
        for (const auto& [key, out] : {std::pair{"factor", &c.rope_scaling.factor},
                                       {"low_freq_factor", &c.rope_scaling.low_freq_factor},
                                       {"high_freq_factor", &c.rope_scaling.high_freq_factor},
                                       {"original_max_position_embeddings", &c.rope_scaling.original_max_position}})
            if (const auto why = read_field(rope, key, *out); !why.empty()) return bad("rope scaling " + why);
        if (!(c.rope_scaling.factor >= 1) || !(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor))
            return bad("rope scaling llama3 has impossible factors");
    } else if (type != "default") {
        return bad("rope scaling type '" + type + "' is not supported (default, llama3)");
    }

    if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer())
        c.bos_id = j["bos_token_id"].get<std::int32_t>();
    if (!generation_json.empty()) {
        try {
            const auto g = json::parse(generation_json);
            if (g.contains("eos_token_id")) read_ids(g["eos_token_id"], c.eos_ids);
        } catch (const json::exception& e) {
            return common::make_error(file + ": generation_config.json beside it is not valid JSON: " + e.what());
        }
    }
    if (c.eos_ids.empty() && j.contains("eos_token_id")) read_ids(j["eos_token_id"], c.eos_ids);
    return c;
}

}  // namespace runner
