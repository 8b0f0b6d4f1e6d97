#include "runner/model/gguf_config.h"

#include <algorithm>

namespace runner {

namespace {

// A positive integer setting; nullopt (and `problem` set) when absent or out of range, or absent and
// optional (`problem` left empty).
std::optional<int> positive(const GgufHeader& h, const std::string& key, bool required, std::string& problem) {
    const auto v = h.integer(key);
    if (!v) {
        if (h.find(key))
            problem = key + " is not an integer";
        else if (required)
            problem = "missing " + key;
        return std::nullopt;
    }
    if (*v <= 0 || *v > (1 << 30)) {
        problem = key + " must be a positive integer";
        return std::nullopt;
    }
    return static_cast<int>(*v);
}

}  // namespace

common::Result<ModelConfig> gguf_model_config(const GgufHeader& h, const std::string& file) {
    const auto bad = [&](const std::string& why) { return common::make_error(file + ": " + why); };
    const auto arch_name = h.string("general.architecture");
    if (!arch_name) return bad("no general.architecture");
    const auto* arch = find_gguf_architecture(*arch_name);
    if (!arch) return bad("architecture " + *arch_name + " is not supported (supported: llama, qwen2, qwen3)");
    const std::string a = *arch_name + ".";

    ModelConfig c;
    c.arch = *arch;
    c.rope_pairs = arch->gguf_rope;
    std::string problem;
    for (const auto& [key, out, required] : {std::tuple{"embedding_length", &c.n_embd, true},
                                             {"block_count", &c.n_layer, true},
                                             {"attention.head_count", &c.n_head, true},
                                             {"feed_forward_length", &c.n_ff, true},
                                             {"context_length", &c.max_position, true},
                                             {"attention.head_count_kv", &c.n_head_kv, false},
                                             {"attention.key_length", &c.head_dim, false}}) {
        if (const auto v = positive(h, a + key, required, problem))
            *out = *v;
        else if (!problem.empty())
            return bad(problem);
    }
    if (const auto why = complete_shape(
            c, {"attention.head_count", "attention.head_count_kv", "attention.key_length", "embedding_length"});
        !why.empty())
        return bad(a + why);
    if (const auto v = h.integer(a + "attention.value_length"); v && *v != c.head_dim)
        return bad(a + "attention.value_length differs from the key length, which these architectures never do");

    if (const auto* tokens = h.find("tokenizer.ggml.tokens"); tokens && tokens->is_array)
        c.n_vocab = static_cast<int>(tokens->strings.size());
    else if (const auto v = positive(h, a + "vocab_size", false, problem))
        c.n_vocab = *v;
    if (!problem.empty()) return bad(problem);
    if (c.n_vocab == 0) return bad("no tokenizer.ggml.tokens or " + a + "vocab_size: the vocabulary's size is unknown");

    if (const auto eps = h.real(a + "attention.layer_norm_rms_epsilon")) c.rms_eps = static_cast<float>(*eps);
    if (!(c.rms_eps > 0 && c.rms_eps < 1)) return bad(a + "attention.layer_norm_rms_epsilon must be in (0, 1)");
    if (const auto theta = h.real(a + "rope.freq_base")) c.rope_theta = static_cast<float>(*theta);
    if (!(c.rope_theta > 0)) return bad(a + "rope.freq_base must be positive");
    // Llama 3.1's scaling comes as a rope_freqs tensor, not as metadata; metadata scaling (linear, YaRN)
    // is another formula, which the engine does not compute.
    if (const auto type = h.string(a + "rope.scaling.type"); type && *type != "none")
        return bad("rope scaling " + *type + " is not supported");
    if (const auto dims = h.integer(a + "rope.dimension_count"); dims && *dims != c.head_dim)
        return bad(a + "rope.dimension_count is " + std::to_string(*dims) +
                   ": RoPE over part of a head is not supported");

    c.tie_embeddings =
        std::none_of(h.tensors.begin(), h.tensors.end(), [](const GgufTensor& t) { return t.name == "output.weight"; });
    for (const char* key :
         {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
        if (const auto id = h.integer(key);
            id && *id >= 0 && *id < c.n_vocab && std::find(c.eos_ids.begin(), c.eos_ids.end(), *id) == c.eos_ids.end())
            c.eos_ids.push_back(static_cast<std::int32_t>(*id));
    if (const auto id = h.integer("tokenizer.ggml.bos_token_id"); id && *id >= 0 && *id < c.n_vocab)
        c.bos_id = static_cast<std::int32_t>(*id);
    return c;
}

}  // namespace runner
