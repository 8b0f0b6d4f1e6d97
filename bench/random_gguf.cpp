#include "random_gguf.h"

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
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    const char* name;
};

Shape shape_of(GgufShape s) {
    if (s == GgufShape::llama_70b) return {8192, 80, 64, 8, 28672, 128256, "bench-llama-70b-shape-q4_k_m.gguf"};
    return {4096, 32, 32, 8, 14336, 128256, "bench-llama-8b-shape-q4_k_m.gguf"};
}

// ggml's type ids and block layouts, and where each block keeps its f16 scales.
struct Type {
    std::uint32_t id;
    std::size_t elements, bytes;
    std::size_t scale_at, min_at;  // min_at 0: none
    float scale;                   // keeps the weights near +-0.05
};
constexpr Type f32{0, 1, 4, 0, 0, 0};
constexpr Type q4_k{12, 256, 144, 0, 2, 1.5e-4f};
constexpr Type q6_k{14, 256, 210, 208, 0, 2e-5f};

struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;  // ggml's order: dims[0] is a row's length
    Type type;
    std::uint64_t offset = 0;
    std::uint64_t bytes() const {
        std::uint64_t n = 1;
        for (auto d : dims) n *= d;
        return n / type.elements * type.bytes;
    }
};

class Writer {
  public:
    explicit Writer(std::ofstream& out) : out_(out) {}
    void u32(std::uint32_t v) { raw(&v, 4); }
    void u64(std::uint64_t v) { raw(&v, 8); }
    void f32(float v) { raw(&v, 4); }
    void str(const std::string& s) {
        u64(s.size());
        raw(s.data(), s.size());
    }
    void key_u32(const std::string& k, std::uint32_t v) { str(k), u32(4), u32(v); }
    void key_f32(const std::string& k, float v) { str(k), u32(6), f32(v); }
    void key_str(const std::string& k, const std::string& v) { str(k), u32(8), str(v); }
    void raw(const void* p, std::size_t n) {
        out_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
        written_ += n;
    }
    std::uint64_t written() const { return written_; }

  private:
    std::ofstream& out_;
    std::uint64_t written_ = 0;
};

std::uint16_t to_f16(float v) {
    // normal positive values only (the scales below): exponent and the top 10 mantissa bits
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    const int exp = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
    return static_cast<std::uint16_t>((exp << 10) | ((bits >> 13) & 0x3ff));
}

// Random blocks with f16 scales near type.scale; F32 tensors (norms) all ones.
void write_data(Writer& w, const Tensor& t, std::uint64_t& state) {
    std::vector<std::uint8_t> buf(t.type.bytes * 4096);
    std::uint64_t left = t.bytes();
    while (left) {
        const std::uint64_t n = std::min<std::uint64_t>(left, buf.size());
        if (t.type.id == f32.id) {
            const float one = 1.f;
            for (std::uint64_t i = 0; i < n; i += 4) std::memcpy(buf.data() + i, &one, 4);
        } else {
            for (std::uint64_t i = 0; i < n; i += 8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                std::memcpy(buf.data() + i, &state, std::min<std::uint64_t>(8, n - i));
            }
            for (std::uint64_t b = 0; b < n; b += t.type.bytes) {
                const float jitter = 0.5f + static_cast<float>(buf[b + 1] % 128) / 128.f;
                const std::uint16_t d = to_f16(t.type.scale * jitter);
                std::memcpy(buf.data() + b + t.type.scale_at, &d, 2);
                if (t.type.min_at) {
                    const std::uint16_t m = to_f16(t.type.scale * jitter * 7.5f);
                    std::memcpy(buf.data() + b + t.type.min_at, &m, 2);
                }
            }
        }
        w.raw(buf.data(), n);
        left -= n;
    }
}

void write_gguf(const fs::path& file, const Shape& s) {
    const std::uint64_t e = static_cast<std::uint64_t>(s.n_embd), hd = e / static_cast<std::uint64_t>(s.n_head),
                        q = hd * static_cast<std::uint64_t>(s.n_head),
                        kv = hd * static_cast<std::uint64_t>(s.n_head_kv), ff = static_cast<std::uint64_t>(s.n_ff),
                        vocab = static_cast<std::uint64_t>(s.n_vocab);
    std::vector<Tensor> tensors = {
        {"token_embd.weight", {e, vocab}, q4_k}, {"output_norm.weight", {e}, f32}, {"output.weight", {e, vocab}, q6_k}};
    for (int i = 0; i < s.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        tensors.push_back({p + "attn_norm.weight", {e}, f32});
        tensors.push_back({p + "attn_q.weight", {e, q}, q4_k});
        tensors.push_back({p + "attn_k.weight", {e, kv}, q4_k});
        tensors.push_back({p + "attn_v.weight", {e, kv}, q6_k});
        tensors.push_back({p + "attn_output.weight", {q, e}, q4_k});
        tensors.push_back({p + "ffn_norm.weight", {e}, f32});
        tensors.push_back({p + "ffn_gate.weight", {e, ff}, q4_k});
        tensors.push_back({p + "ffn_up.weight", {e, ff}, q4_k});
        tensors.push_back({p + "ffn_down.weight", {ff, e}, q6_k});
    }
    constexpr std::uint64_t alignment = 32;
    std::uint64_t offset = 0;
    for (auto& t : tensors) {
        t.offset = offset;
        offset = (offset + t.bytes() + alignment - 1) / alignment * alignment;
    }

    const fs::path partial = file.string() + ".partial";
    fs::create_directories(file.parent_path());
    std::ofstream out(partial, std::ios::binary);
    Writer w(out);
    w.raw("GGUF", 4);
    w.u32(3);
    w.u64(tensors.size());
    w.u64(14);
    w.key_str("general.architecture", "llama");
    w.key_u32("general.file_type", 15);  // MOSTLY_Q4_K_M
    w.key_u32("llama.context_length", 131072);
    w.key_u32("llama.embedding_length", static_cast<std::uint32_t>(e));
    w.key_u32("llama.block_count", static_cast<std::uint32_t>(s.n_layer));
    w.key_u32("llama.feed_forward_length", static_cast<std::uint32_t>(ff));
    w.key_u32("llama.attention.head_count", static_cast<std::uint32_t>(s.n_head));
    w.key_u32("llama.attention.head_count_kv", static_cast<std::uint32_t>(s.n_head_kv));
    w.key_u32("llama.rope.dimension_count", static_cast<std::uint32_t>(hd));
    w.key_u32("llama.vocab_size", static_cast<std::uint32_t>(vocab));
    w.key_f32("llama.rope.freq_base", 500000.f);
    w.key_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.key_str("tokenizer.ggml.model", "none");
    w.key_str("general.name", s.name);
    for (const auto& t : tensors) {
        w.str(t.name);
        w.u32(static_cast<std::uint32_t>(t.dims.size()));
        for (auto d : t.dims) w.u64(d);
        w.u32(t.type.id);
        w.u64(t.offset);
    }
    const std::vector<char> pad(alignment, 0);
    w.raw(pad.data(), (alignment - w.written() % alignment) % alignment);
    const std::uint64_t data_start = w.written();
    std::uint64_t state = 0x9e3779b97f4a7c15ull;
    for (const auto& t : tensors) {
        w.raw(pad.data(), data_start + t.offset - w.written());
        write_data(w, t, state);
    }
    out.close();
    if (!out) {
        std::fprintf(stderr, "bench: could not write %s\n", partial.c_str());
        std::exit(1);
    }
    fs::rename(partial, file);
}

}  // namespace

fs::path default_gguf_path(GgufShape shape) { return bench_cache_dir() / shape_of(shape).name; }

void ensure_random_gguf(const fs::path& file, GgufShape shape) {
    if (fs::exists(file)) return;
    std::printf("writing a random-weight Q4_K_M GGUF shaped like %s to %s ...\n", shape_of(shape).name, file.c_str());
    std::fflush(stdout);
    write_gguf(file, shape_of(shape));
}

}  // namespace bench
