// config.json and generation_config.json of a Hugging Face model folder, as the engine needs them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace runner {

// Which dimensions of a head RoPE rotates together: Hugging Face's rotate-half pairs (i, i + head_dim / 2),
// or adjacent ones (2i, 2i + 1), which llama.cpp's GGUF files of llama models need: its converter
// permutes their q and k rows into that order (attention's dot products do not change, RoPE's pairs do).
enum class RopePairs { half, adjacent };

// What distinguishes the supported architectures: data, not branches in the engine.
struct ArchitectureTraits {
    const char* name;       // config.json "architectures"[0]
    const char* gguf_name;  // GGUF's general.architecture (Mistral's GGUF files say "llama")
    bool qkv_bias;          // Qwen2: q/k/v projections have biases
    bool qk_norm;           // Qwen3: RMSNorm over each head of q and k before RoPE
    RopePairs gguf_rope;    // RoPE's pairs in the architecture's GGUF files
};

const ArchitectureTraits* find_architecture(const std::string& name);
const ArchitectureTraits* find_gguf_architecture(const std::string& gguf_name);
std::string supported_architectures();  // "LlamaForCausalLM, MistralForCausalLM, ..."

struct RopeScaling {
    std::string type;  // "" (none) or "llama3"
    float factor = 1;
    float low_freq_factor = 1;
    float high_freq_factor = 4;
    float original_max_position = 8192;
};

struct ModelConfig {
    ArchitectureTraits arch{};
    int n_embd = 0;
    int n_layer = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    int n_ff = 0;
    int n_vocab = 0;
    int max_position = 0;
    float rms_eps = 1e-5f;
    float rope_theta = 10000.f;
    RopeScaling rope_scaling;
    RopePairs rope_pairs = RopePairs::half;
    // Divisors of RoPE's head_dim / 2 frequencies, empty for none: how GGUF files carry Llama 3.1's
    // scaling (the rope_freqs tensor).
    std::vector<float> rope_freq_factors;
    bool tie_embeddings = false;
    std::vector<std::int32_t> eos_ids;  // generation_config.json, else config.json
    std::int32_t bos_id = -1;
};

// What makes a shape impossible for the engine (heads that do not divide, an odd head_dim), with the
// defaults filled in (n_head_kv = n_head, head_dim = n_embd / n_head where 0): empty when none. Both
// config.json and GGUF metadata go through it; `names` says what the file calls the heads and head_dim.
struct ShapeNames {
    const char* n_head;
    const char* n_head_kv;
    const char* head_dim;
    const char* n_embd;
};
std::string complete_shape(ModelConfig& c, const ShapeNames& names);

// `file` names config.json in messages; `generation` is generation_config.json's text or empty.
common::Result<ModelConfig> parse_model_config(const std::string& config_json, const std::string& file,
                                               const std::string& generation_json);

}  // namespace runner
