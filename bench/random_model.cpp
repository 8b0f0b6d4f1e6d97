#include "random_model.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace bench {

namespace {

struct Shape {
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, max_position;
    const char* name;
};

Shape shape_of(ModelShape s) {
    if (s == ModelShape::llama_8b) return {4096, 32, 32, 8, 14336, 128256, 8192, "bench-llama-8b-shape"};
    return {2048, 16, 32, 8, 8192, 32000, 4096, "bench-llama-1b-shape"};
}

// Small random bf16 values from a xorshift generator: deterministic, never NaN or Inf.
void write_random_bf16(std::ofstream& out, std::size_t count, std::uint64_t& state) {
    std::vector<std::uint16_t> buf(1 << 16);
    while (count) {
        const std::size_t n = std::min(count, buf.size());
        for (std::size_t i = 0; i < n; ++i) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            const float v = (static_cast<float>(state >> 40) / static_cast<float>(1 << 24) - 0.5f) * 0.05f;
            std::uint32_t bits;
            std::memcpy(&bits, &v, 4);
            buf[i] = static_cast<std::uint16_t>(bits >> 16);
        }
        out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(n * 2));
        count -= n;
    }
}

void write_model(const fs::path& dir, const Shape& s) {
    fs::create_directories(dir);
    struct T {
        std::string name;
        std::vector<std::int64_t> shape;
    };
    std::vector<T> tensors = {{"model.embed_tokens.weight", {s.n_vocab, s.n_embd}},
                              {"model.norm.weight", {s.n_embd}},
                              {"lm_head.weight", {s.n_vocab, s.n_embd}}};
    const std::int64_t hd = s.n_embd / s.n_head;
    for (int i = 0; i < s.n_layer; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        tensors.push_back({p + "input_layernorm.weight", {s.n_embd}});
        tensors.push_back({p + "self_attn.q_proj.weight", {s.n_head * hd, s.n_embd}});
        tensors.push_back({p + "self_attn.k_proj.weight", {s.n_head_kv * hd, s.n_embd}});
        tensors.push_back({p + "self_attn.v_proj.weight", {s.n_head_kv * hd, s.n_embd}});
        tensors.push_back({p + "self_attn.o_proj.weight", {s.n_embd, s.n_head * hd}});
        tensors.push_back({p + "post_attention_layernorm.weight", {s.n_embd}});
        tensors.push_back({p + "mlp.gate_proj.weight", {s.n_ff, s.n_embd}});
        tensors.push_back({p + "mlp.up_proj.weight", {s.n_ff, s.n_embd}});
        tensors.push_back({p + "mlp.down_proj.weight", {s.n_embd, s.n_ff}});
    }
    std::string header = "{";
    std::uint64_t offset = 0;
    for (const auto& t : tensors) {
        std::uint64_t n = 1;
        std::string shape;
        for (auto d : t.shape) {
            n *= static_cast<std::uint64_t>(d);
            shape += (shape.empty() ? "" : ",") + std::to_string(d);
        }
        header += (header.size() > 1 ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"BF16\",\"shape\":[" +
                  shape + "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + 2 * n) + "]}";
        offset += 2 * n;
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');
    const fs::path file = dir / "model.safetensors.partial";
    std::ofstream out(file, std::ios::binary);
    const std::uint64_t len = header.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << header;
    std::uint64_t state = 0x9e3779b97f4a7c15ull;
    for (const auto& t : tensors) {
        std::uint64_t n = 1;
        for (auto d : t.shape) n *= static_cast<std::uint64_t>(d);
        write_random_bf16(out, n, state);
    }
    out.close();
    fs::rename(file, dir / "model.safetensors");
    std::ofstream(dir / "config.json") << "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":" << s.n_embd
                                       << ",\"num_hidden_layers\":" << s.n_layer
                                       << ",\"num_attention_heads\":" << s.n_head
                                       << ",\"num_key_value_heads\":" << s.n_head_kv
                                       << ",\"intermediate_size\":" << s.n_ff << ",\"vocab_size\":" << s.n_vocab
                                       << ",\"rms_norm_eps\":1e-5,\"rope_theta\":500000.0,\"max_position_embeddings\":"
                                       << s.max_position << "}";
}

}  // namespace

fs::path bench_cache_dir() {
    const char* cache = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    const fs::path base = cache ? fs::path(cache) : fs::path(home ? home : "/tmp") / ".cache";
    return base / "ollama-airllm-rocm";
}

fs::path default_model_dir(ModelShape shape) { return bench_cache_dir() / shape_of(shape).name; }

void ensure_random_model(const fs::path& dir, ModelShape shape) {
    if (fs::exists(dir / "model.safetensors")) return;
    std::printf("writing a random-weight model shaped like %s to %s ...\n", shape_of(shape).name, dir.c_str());
    std::fflush(stdout);
    write_model(dir, shape_of(shape));
}

}  // namespace bench
