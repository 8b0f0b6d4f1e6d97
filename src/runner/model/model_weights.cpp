#include "runner/model/model_weights.h"

#include "runner/model/mapped_file.h"

namespace runner {

std::array<const TensorView*, 14> layer_tensors(const LayerWeights& l) {
    return {l.attn_norm, l.wq,     l.wk,     l.wv,       l.wo,     l.bq,   l.bk,
            l.bv,        l.q_norm, l.k_norm, l.ffn_norm, l.w_gate, l.w_up, l.w_down};
}

void will_need(const LayerWeights& l) {
    for (const TensorView* t : layer_tensors(l))
        if (t && t->file) t->file->will_need(t->file_offset, t->bytes);
}

void dont_need(const LayerWeights& l) {
    for (const TensorView* t : layer_tensors(l))
        if (t && t->file) t->file->dont_need(t->file_offset, t->bytes);
}

std::size_t LayerWeights::bytes() const {
    std::size_t total = 0;
    for (const TensorView* t : layer_tensors(*this))
        if (t) total += t->bytes;
    return total;
}

common::Result<ModelWeights> bind_weights(const WeightSource& source) {
    const ModelConfig& c = source.config();
    std::string problems;
    const auto want = [&](const std::string& name, std::vector<std::int64_t> shape) -> const TensorView* {
        const TensorView* t = source.tensor(name);
        std::string expected = "[";
        for (std::size_t i = 0; i < shape.size(); ++i) expected += (i ? ", " : "") + std::to_string(shape[i]);
        expected += "]";
        if (!t) {
            problems +=
                (problems.empty() ? "" : "\n") + source.describe() + ": missing tensor " + name + " " + expected;
            return nullptr;
        }
        if (t->shape != shape)
            problems += (problems.empty() ? "" : "\n") + source.describe() + ": tensor " + name + " has shape " +
                        t->shape_string() + ", expected " + expected;
        return t;
    };
    const std::int64_t e = c.n_embd, q = std::int64_t(c.n_head) * c.head_dim,
                       kv = std::int64_t(c.n_head_kv) * c.head_dim;
    ModelWeights w;
    w.token_embd = want("model.embed_tokens.weight", {c.n_vocab, e});
    w.output_norm = want("model.norm.weight", {e});
    w.output = c.tie_embeddings ? w.token_embd : want("lm_head.weight", {c.n_vocab, e});
    for (int i = 0; i < c.n_layer; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        // A layer count beyond the weights (num_hidden_layers: 1000000000) is one message, found
        // before a problem line or a layer entry is kept for each missing layer.
        if (!source.tensor(p + "input_layernorm.weight") && !source.tensor(p + "mlp.down_proj.weight"))
            return common::make_error(source.describe() + ": the config says " + std::to_string(c.n_layer) +
                                      " layers (num_hidden_layers) but the weights have no " + p + "* tensors" +
                                      (i > 0 ? " (they end at layer " + std::to_string(i - 1) + ")" : ""));
        LayerWeights l{};
        l.attn_norm = want(p + "input_layernorm.weight", {e});
        l.wq = want(p + "self_attn.q_proj.weight", {q, e});
        l.wk = want(p + "self_attn.k_proj.weight", {kv, e});
        l.wv = want(p + "self_attn.v_proj.weight", {kv, e});
        l.wo = want(p + "self_attn.o_proj.weight", {e, q});
        if (c.arch.qkv_bias) {
            l.bq = want(p + "self_attn.q_proj.bias", {q});
            l.bk = want(p + "self_attn.k_proj.bias", {kv});
            l.bv = want(p + "self_attn.v_proj.bias", {kv});
        }
        if (c.arch.qk_norm) {
            l.q_norm = want(p + "self_attn.q_norm.weight", {c.head_dim});
            l.k_norm = want(p + "self_attn.k_norm.weight", {c.head_dim});
        }
        l.ffn_norm = want(p + "post_attention_layernorm.weight", {e});
        l.w_gate = want(p + "mlp.gate_proj.weight", {c.n_ff, e});
        l.w_up = want(p + "mlp.up_proj.weight", {c.n_ff, e});
        l.w_down = want(p + "mlp.down_proj.weight", {e, c.n_ff});
        w.layers.push_back(l);
    }
    if (!problems.empty()) return common::make_error(problems);
    return w;
}

}  // namespace runner
