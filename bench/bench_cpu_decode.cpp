// Decode speed of the CPU engine against its physical bound: every generated token reads all layer
// weights and the output head once, so tokens/s cannot beat (memory read bandwidth / weight bytes per
// token). The model is a random-weight Llama with Llama 3.2 1B's layer shapes (32k vocabulary),
// written once by this program into a cache folder.
//
// usage: bench_cpu_decode [MODEL_DIR] [TOKENS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "runner/backend/cpu/simd.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/engine/generate.h"
#include "runner/model/hf_folder.h"

namespace fs = std::filesystem;

namespace {

struct Shape {
    int n_embd = 2048, n_layer = 16, n_head = 32, n_head_kv = 8, n_ff = 8192, n_vocab = 32000;
};

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
    std::ofstream(dir / "config.json")
        << "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":" << s.n_embd
        << ",\"num_hidden_layers\":" << s.n_layer << ",\"num_attention_heads\":" << s.n_head
        << ",\"num_key_value_heads\":" << s.n_head_kv << ",\"intermediate_size\":" << s.n_ff
        << ",\"vocab_size\":" << s.n_vocab
        << ",\"rms_norm_eps\":1e-5,\"rope_theta\":500000.0,\"max_position_embeddings\":4096}";
}

// Read bandwidth with the same threads the engine uses: a sum over a buffer much larger than caches.
double read_bandwidth_gbs(runner::cpu::ThreadPool& pool) {
    const std::size_t n = std::size_t(1) << 28;  // 1 GiB of floats
    std::vector<float> buf(n, 1.0f);
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
        std::vector<double> partial(pool.size() * 8, 0.0);
        const auto start = std::chrono::steady_clock::now();
        pool.parallel_for(n / 4096, [&](std::size_t b, std::size_t e) {
            float acc = 0;
            for (std::size_t i = b * 4096; i < e * 4096; i += 4096)
                acc += runner::cpu::dot_f32(buf.data() + i, buf.data() + i, 4096);
            partial[(b * 8) % partial.size()] += acc;
        });
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        // dot_f32(a, a) reads each float once from memory (the second operand hits the same cache line).
        best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const char* cache = std::getenv("XDG_CACHE_HOME");
    const fs::path dir =
        argc > 1 ? fs::path(argv[1])
                 : (cache ? fs::path(cache) : fs::path(std::getenv("HOME") ? std::getenv("HOME") : "/tmp") / ".cache") /
                       "ollama-airllm-rocm/bench-llama-1b-shape";
    const int tokens = argc > 2 ? std::atoi(argv[2]) : 24;
    if (!fs::exists(dir / "model.safetensors")) {
        std::printf("writing a random-weight model with Llama 3.2 1B's layer shapes to %s ...\n", dir.c_str());
        write_model(dir, Shape{});
    }
    auto source = runner::open_hf_folder(dir);
    if (!source) {
        std::fprintf(stderr, "bench_cpu_decode: %s\n", source.error().message.c_str());
        return 1;
    }
    auto weights = runner::bind_weights(**source);
    if (!weights) {
        std::fprintf(stderr, "bench_cpu_decode: %s\n", weights.error().message.c_str());
        return 1;
    }
    std::size_t bytes_per_token = weights->output->bytes + weights->output_norm->bytes;
    for (const auto& l : weights->layers) bytes_per_token += l.bytes();

    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    runner::cpu::ThreadPool pool(threads);
    const double bandwidth = read_bandwidth_gbs(pool);

    runner::Transformer model(**source, std::move(weights).value(), 512, threads);
    std::vector<std::int32_t> prompt = {1, 450, 4996, 17354, 1701, 29916, 432, 17204};
    runner::SamplingParams params;
    params.temperature = 0;
    runner::Sampler warm_sampler(params);
    // A first run pulls the weights into the page cache; the measured run then reads them from RAM.
    (void)runner::generate(model, prompt, 2, warm_sampler, {}, nullptr);
    runner::Transformer timed(**source, std::move(runner::bind_weights(**source)).value(), 512, threads);
    runner::Sampler sampler(params);
    const auto result = runner::generate(timed, prompt, tokens, sampler, {}, nullptr);
    if (!result) {
        std::fprintf(stderr, "bench_cpu_decode: %s\n", result.error().message.c_str());
        return 1;
    }
    const double decode_tps = static_cast<double>(result->ids.size() - 1) / result->decode_seconds;
    const double bound_tps = bandwidth * 1e9 / static_cast<double>(bytes_per_token);
    std::printf("\nCPU decode, random Llama 1B-shape model (bf16), %u threads, %s kernels\n\n", threads,
                runner::cpu::using_avx2() ? "AVX2+FMA" : "portable");
    std::printf("%-40s %14s\n", "weight bytes per token",
                (std::to_string(bytes_per_token / (1 << 20)) + " MiB").c_str());
    std::printf("%-40s %14.2f\n", "measured read bandwidth (GB/s)", bandwidth);
    std::printf("%-40s %14.2f\n", "bound: bandwidth / bytes (tokens/s)", bound_tps);
    std::printf("%-40s %14.2f\n", "achieved decode (tokens/s)", decode_tps);
    std::printf("%-40s %13.0f%%\n", "achieved / bound", 100.0 * decode_tps / bound_tps);
    std::printf("%-40s %14.2f\n", "prompt (8 tokens, tokens/s)",
                static_cast<double>(prompt.size()) / result->prompt_seconds);
    return 0;
}
