#include "runner/selftest/gpu_checks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "runner/backend/cpu/int8_dot.h"
#include "runner/backend/cpu/ops.h"
#include "runner/backend/gpu/backend.h"
#include "runner/offload/layer_slab.h"
#include "runner/selftest/gpu_bandwidth.h"
#include "runner/selftest/test_data.h"

namespace runner::selftest {

namespace {

// Exact to f32 rounding; the BLAS rounds activations to 16 bits; the tensor-core attention rounds
// queries and probabilities to f16.
constexpr float f32_tolerance = 2e-5f, blas_tolerance = 1e-2f, f16_attention_tolerance = 5e-3f,
                f16_rounding_tolerance = 1e-3f;
// Decode with quantized weights multiplies int8 activations: against the same rounding on the CPU it is
// exact to f32 rounding, but after an RMS norm the GPU's rsqrt may round an activation at a step's edge
// the other way (one step, 1/127 of its block's largest).
constexpr float int8_norm_tolerance = 1e-3f;
// Decode's kernels take up to this many tokens (the int8 activations with quantized weights).
constexpr int decode_tokens = 8;

// Synchronized: the source is pageable and often a temporary, which HIP does not promise to have read
// when an asynchronous copy returns.
gpu::DeviceBuffer upload(const void* data, std::size_t bytes, const gpu::Stream& s) {
    gpu::DeviceBuffer b(bytes);
    gpu::copy_to_device(b.data(), data, bytes, s);
    s.synchronize();
    return b;
}

gpu::DeviceBuffer upload(const std::vector<float>& v, const gpu::Stream& s) {
    return upload(v.data(), v.size() * sizeof(float), s);
}

std::vector<float> download(const gpu::DeviceBuffer& b, std::size_t n, const gpu::Stream& s) {
    std::vector<float> v(n);
    gpu::copy_to_host(v.data(), b.data(), n * sizeof(float), s);
    s.synchronize();
    return v;
}

// A weight matrix in host memory (the CPU reference reads it) and on the device (the kernel reads it).
struct Weights {
    std::string name;  // "bf16", "q4_k", "q8"
    std::vector<std::byte> host;
    cpu::Matrix matrix;
    WeightType type;
    gpu::DeviceBuffer device;
};

Weights make_weights(std::mt19937& rng, DType dtype, std::size_t rows, std::size_t cols, const gpu::Stream& s) {
    Weights w{format_name(dtype), random_weights(rng, dtype, rows, cols), {}, stored_type(dtype), {}};
    // The GPU's products take f32 activations; so does their reference.
    w.matrix = cpu::Matrix(view_of(w.host, dtype, rows, cols)).with_f32_activations();
    w.device = upload(w.host.data(), w.host.size(), s);
    return w;
}

Weights make_quantized(std::mt19937& rng, WeightType type, std::size_t rows, std::size_t cols, const gpu::Stream& s) {
    Weights w{type == WeightType::q8 ? "q8" : "q4", random_quantized(rng, type, rows, cols), {}, type, {}};
    w.matrix = cpu::Matrix(w.host.data(), type, rows, cols).with_f32_activations();
    w.device = upload(w.host.data(), w.host.size(), s);
    return w;
}

// Runs one check; a kernel that throws fails with what it said.
template <class Fn>
void run_check(std::vector<KernelCheck>& checks, const std::string& kernel, Fn&& fn) {
    try {
        checks.push_back(fn());
    } catch (const std::exception& e) {
        KernelCheck failed;
        failed.kernel = kernel;
        failed.failure = e.what();
        checks.push_back(std::move(failed));
    }
}

// Decode (the matrix-vector kernel, up to 8 tokens), a prompt (the tiled kernel, up to 31 tokens, and
// every prompt when there is no BLAS), and where a BLAS loads a long prompt on it: plain, accumulating
// into the residual (the in-place GEMM the output and down projections take) and with a bias.
void check_products(std::vector<KernelCheck>& checks, const Weights& w, int d_in, int d_out, const gpu::Blas& blas,
                    std::mt19937& rng, cpu::ThreadPool& pool, const gpu::Stream& s) {
    struct Case {
        const char* name;
        int n_tokens;
        bool on_blas;
    };
    const auto bias_bytes = random_weights(rng, DType::bf16, 1, static_cast<std::size_t>(d_out));
    const auto bias_view = vector_view(bias_bytes, DType::bf16, static_cast<std::size_t>(d_out));
    for (const auto& [name, n_tokens, on_blas] :
         {Case{"decode", 1, false}, Case{"decode3", 3, false}, Case{"decode7", 7, false}, Case{"prompt", 20, false},
          Case{"blas", 48, true}}) {
        if (on_blas && (!gpu::Blas::loaded() || w.type == WeightType::f32)) continue;
        const std::string kernel = on_blas ? "blas." + w.name : "matmul." + w.name + "." + name;
        const auto n = static_cast<std::size_t>(n_tokens);
        const gpu::Blas* with = on_blas ? &blas : nullptr;
        const bool int8 = cpu::takes_int8(w.type) && n_tokens <= decode_tokens;
        gpu::DeviceBuffer scratch(n * d_in * sizeof(float));
        run_check(checks, kernel, [&] {
            const auto x = random_floats(rng, n * d_in);
            std::vector<float> want(n * d_out);
            cpu::matmul(want.data(), int8 ? int8_rounded(x).data() : x.data(), w.matrix, nullptr, n, pool);
            const auto dx = upload(x, s);
            gpu::DeviceBuffer out(want.size() * sizeof(float));
            gpu::matmul(out.as<float>(), dx.as<float>(), w.device.data(), w.type, nullptr, WeightType::f32,
                        scratch.as<float>(), n_tokens, d_in, d_out, s, with);
            auto got = download(out, want.size(), s);
            return compare(kernel, got, want, on_blas ? blas_tolerance : f32_tolerance);
        });
        if (!on_blas) continue;
        run_check(checks, kernel + ".add", [&] {
            const auto x = random_floats(rng, n * d_in);
            auto want = random_floats(rng, n * d_out);
            auto residual = upload(want, s);
            std::vector<float> product(want.size());
            cpu::matmul(product.data(), x.data(), w.matrix, nullptr, n, pool);
            for (std::size_t i = 0; i < want.size(); ++i) want[i] += product[i];
            const auto dx = upload(x, s);
            gpu::matmul_add(residual.as<float>(), dx.as<float>(), w.device.data(), w.type, scratch.as<float>(),
                            n_tokens, d_in, d_out, s, with);
            auto got = download(residual, want.size(), s);
            return compare(kernel + ".add", got, want, blas_tolerance);
        });
        run_check(checks, kernel + ".bias", [&] {
            const auto x = random_floats(rng, n * d_in);
            std::vector<float> want(n * d_out);
            cpu::matmul(want.data(), x.data(), w.matrix, &bias_view, n, pool);
            const auto dx = upload(x, s), dbias = upload(bias_bytes.data(), bias_bytes.size(), s);
            gpu::DeviceBuffer out(want.size() * sizeof(float));
            gpu::matmul(out.as<float>(), dx.as<float>(), w.device.data(), w.type, dbias.data(), WeightType::bf16,
                        scratch.as<float>(), n_tokens, d_in, d_out, s, with);
            auto got = download(out, want.size(), s);
            return compare(kernel + ".bias", got, want, blas_tolerance);
        });
    }
}

// The fused forms a layer runs: q, k and v from one normalization; the MLP's gate and up with SwiGLU;
// the residual add of the output projection. Against the CPU's separate steps. Decode fuses them into
// one launch; a prompt normalizes into the scratch and runs each product and the gate apart.
void check_fused(std::vector<KernelCheck>& checks, const Weights& a, const Weights& b, int d_in, int d_out,
                 std::mt19937& rng, cpu::ThreadPool& pool, const gpu::Stream& s) {
    const auto norm_bytes = random_weights(rng, DType::bf16, 1, static_cast<std::size_t>(d_in));
    const auto norm_view = vector_view(norm_bytes, DType::bf16, static_cast<std::size_t>(d_in));
    const auto dnorm = upload(norm_bytes.data(), norm_bytes.size(), s);
    const gpu::Norm norm{dnorm.data(), WeightType::bf16, 1e-5f};
    for (const int n_tokens : {1, 20}) {
        const std::string suffix = "." + a.name + (n_tokens == 1 ? ".decode" : ".prompt");
        const auto n = static_cast<std::size_t>(n_tokens);
        const auto x = random_floats(rng, n * d_in, 3.f);
        std::vector<float> normed(x.size()), want_a(n * d_out), want_b(n * d_out);
        cpu::rmsnorm(normed.data(), x.data(), norm_view, n, static_cast<std::size_t>(d_in), 1e-5f);
        const bool int8 = cpu::takes_int8(a.type) && n_tokens <= decode_tokens;
        if (int8) normed = int8_rounded(normed);  // what the products see; matmul_add's input as it is
        const float tolerance = int8 ? int8_norm_tolerance : f32_tolerance;
        cpu::matmul(want_a.data(), normed.data(), a.matrix, nullptr, n, pool);
        cpu::matmul(want_b.data(), normed.data(), b.matrix, nullptr, n, pool);
        const auto dx = upload(x, s);
        gpu::DeviceBuffer out_a(want_a.size() * 4), out_b(want_b.size() * 4), scratch(x.size() * 4);
        run_check(checks, "norm_matmul" + suffix, [&] {
            const gpu::Product products[] = {{out_a.as<float>(), a.device.data(), a.type, d_out},
                                             {out_b.as<float>(), b.device.data(), b.type, d_out}};
            gpu::norm_matmul(products, dx.as<float>(), norm, scratch.as<float>(), n_tokens, d_in, s);
            auto got = download(out_a, want_a.size(), s);
            const auto got_b = download(out_b, want_b.size(), s);
            got.insert(got.end(), got_b.begin(), got_b.end());
            auto want = want_a;
            want.insert(want.end(), want_b.begin(), want_b.end());
            return compare("norm_matmul" + suffix, got, want, tolerance);
        });
        run_check(checks, "norm_matmul_swiglu" + suffix, [&] {
            auto want = want_a;
            cpu::swiglu(want.data(), want_b.data(), want.size());
            gpu::norm_matmul_swiglu(out_a.as<float>(), out_b.as<float>(), scratch.as<float>(), dx.as<float>(), norm,
                                    a.device.data(), b.device.data(), a.type, n_tokens, d_in, d_out, s);
            auto got = download(out_a, want.size(), s);
            return compare("norm_matmul_swiglu" + suffix, got, want, tolerance);
        });
        run_check(checks, "matmul_add" + suffix, [&] {
            auto want = random_floats(rng, n * d_out);
            auto residual = upload(want, s);
            const auto dn = upload(normed, s);
            for (std::size_t i = 0; i < want.size(); ++i) want[i] += want_a[i];
            gpu::matmul_add(residual.as<float>(), dn.as<float>(), a.device.data(), a.type, scratch.as<float>(),
                            n_tokens, d_in, d_out, s);
            auto got = download(residual, want.size(), s);
            return compare("matmul_add" + suffix, got, want, f32_tolerance);
        });
    }
}

void check_elementwise(std::vector<KernelCheck>& checks, std::mt19937& rng, const gpu::Stream& s) {
    run_check(checks, "rmsnorm", [&] {
        const int rows = 5, n = 300;
        const auto w = random_weights(rng, DType::bf16, 1, n);
        const auto view = vector_view(w, DType::bf16, n);
        const auto x = random_floats(rng, rows * n, 3.f);
        std::vector<float> want(x.size());
        cpu::rmsnorm(want.data(), x.data(), view, rows, n, 1e-6f);
        const auto dx = upload(x, s), dw = upload(w.data(), w.size(), s);
        gpu::DeviceBuffer out(x.size() * sizeof(float));
        gpu::rmsnorm(out.as<float>(), dx.as<float>(), dw.data(), WeightType::bf16, rows, n, 1e-6f, s);
        auto got = download(out, x.size(), s);
        return compare("rmsnorm", got, want, f32_tolerance);
    });
    run_check(checks, "swiglu", [&] {
        const auto gate = random_floats(rng, 1000, 2.f), up = random_floats(rng, 1000);
        auto want = gate;
        cpu::swiglu(want.data(), up.data(), want.size());
        auto dg = upload(gate, s);
        const auto du = upload(up, s);
        gpu::swiglu(dg.as<float>(), du.as<float>(), gate.size(), s);
        auto got = download(dg, gate.size(), s);
        return compare("swiglu", got, want, f32_tolerance);
    });
    run_check(checks, "add", [&] {
        const auto x = random_floats(rng, 1000), y = random_floats(rng, 1000);
        auto want = x;
        for (std::size_t i = 0; i < want.size(); ++i) want[i] += y[i];
        auto dx = upload(x, s);
        const auto dy = upload(y, s);
        gpu::add(dx.as<float>(), dy.as<float>(), x.size(), s);
        auto got = download(dx, x.size(), s);
        return compare("add", got, want, f32_tolerance);
    });
}

std::vector<float> round_to_f16(std::vector<float> v) {
    for (auto& e : v) e = static_cast<float>(static_cast<_Float16>(e));
    return v;
}

gpu::DeviceBuffer upload_f16(const std::vector<float>& v, const gpu::Stream& s) {
    std::vector<std::uint16_t> bits(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto h = static_cast<_Float16>(v[i]);
        std::memcpy(&bits[i], &h, 2);
    }
    auto b = upload(bits.data(), bits.size() * 2, s);
    s.synchronize();
    return b;
}

std::vector<float> download_f16(const gpu::DeviceBuffer& b, std::size_t n, const gpu::Stream& s) {
    std::vector<std::uint16_t> bits(n);
    gpu::copy_to_host(bits.data(), b.data(), n * 2, s);
    s.synchronize();
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        _Float16 h;
        std::memcpy(&h, &bits[i], 2);
        v[i] = static_cast<float>(h);
    }
    return v;
}

// RoPE with both pairings, the keys and values stored into an f32 cache (and an f16 one), then attention for a prompt
// (positions 0..19) and a decode step (position 300, keys split across blocks), on f32 and f16 caches; then that
// decode step with attention doing the RoPE and the stores itself.
void check_attention(std::vector<KernelCheck>& checks, std::mt19937& rng, cpu::ThreadPool& pool, const gpu::Stream& s) {
    const int n_head = 4, n_head_kv = 2, head_dim = 128, n_ctx = 512, kv = n_head_kv * head_dim;
    std::vector<float> inv_freq(head_dim / 2);
    for (std::size_t i = 0; i < inv_freq.size(); ++i)
        inv_freq[i] = std::pow(10000.f, -2.f * static_cast<float>(i) / head_dim);
    const auto dfreq = upload(inv_freq, s);
    struct RopeCase {
        RopePairs pairs;
        KvType cache;
        const char* name;
    };
    for (const auto& [pairs, cache_type, name] :
         {RopeCase{RopePairs::half, KvType::f32, "rope_store_kv.half"},
          RopeCase{RopePairs::adjacent, KvType::f32, "rope_store_kv.adjacent"},
          RopeCase{RopePairs::half, KvType::f16, "rope_store_kv.half.f16_cache"}}) {
        const std::string kernel = name;
        const bool f16 = cache_type == KvType::f16;
        run_check(checks, kernel, [&] {
            const int n = 6;
            std::vector<int> positions(n);
            for (int t = 0; t < n; ++t) positions[static_cast<std::size_t>(t)] = 40 + 7 * t;
            const auto q = random_floats(rng, static_cast<std::size_t>(n) * n_head * head_dim);
            const auto k = random_floats(rng, static_cast<std::size_t>(n) * kv), v = random_floats(rng, n * kv);
            auto want = q, want_k = k;
            cpu::rope(want.data(), n, n_head, head_dim, inv_freq.data(), positions.data(), pairs);
            cpu::rope(want_k.data(), n, n_head_kv, head_dim, inv_freq.data(), positions.data(), pairs);
            auto dq = upload(q, s), dk = upload(k, s);
            const auto dv = upload(v, s), dpos = upload(positions.data(), positions.size() * sizeof(int), s);
            const std::size_t cache_elements = static_cast<std::size_t>(n_ctx) * kv;
            gpu::DeviceBuffer k_cache(cache_elements * kv_element_bytes(cache_type)), v_cache(k_cache.bytes());
            gpu::rope_store_kv(dq.as<float>(), dk.as<float>(), dv.as<float>(), {k_cache.data(), v_cache.data()},
                               cache_type, n, n_head, n_head_kv, head_dim, dfreq.as<float>(), dpos.as<int>(), pairs, s);
            // The rotated queries, then each token's key and value as the cache holds them at its position
            // (an f16 cache: rounded to nearest even, as the host rounds them).
            auto got = download(dq, q.size(), s);
            want.insert(want.end(), want_k.begin(), want_k.end());
            want.insert(want.end(), v.begin(), v.end());
            if (f16) want = round_to_f16(std::move(want));
            const auto cache_k = f16 ? download_f16(k_cache, cache_elements, s) : download(k_cache, cache_elements, s);
            const auto cache_v = f16 ? download_f16(v_cache, cache_elements, s) : download(v_cache, cache_elements, s);
            for (const auto* cache : {&cache_k, &cache_v})
                for (const int p : positions) {
                    const auto row = cache->begin() + static_cast<long>(p) * kv;
                    got.insert(got.end(), row, row + kv);
                }
            if (f16) {
                // The queries stay f32: rounded here only to be compared as the keys are.
                const auto queries = round_to_f16({got.begin(), got.begin() + static_cast<long>(q.size())});
                std::copy(queries.begin(), queries.end(), got.begin());
            }
            // A rotation computed in another order may round to the neighbouring f16.
            return compare(kernel, got, want, f16 ? f16_rounding_tolerance : f32_tolerance);
        });
    }
    const auto k_cache = random_floats(rng, static_cast<std::size_t>(n_ctx) * kv);
    const auto v_cache = random_floats(rng, static_cast<std::size_t>(n_ctx) * kv);
    const auto k16 = round_to_f16(k_cache), v16 = round_to_f16(v_cache);
    struct Case {
        const char* name;
        int start, n;
    };
    for (const auto& [name, start, n] : {Case{"prompt", 0, 20}, Case{"decode", 300, 1}})
        for (const auto kv_type : {KvType::f32, KvType::f16}) {
            const std::string kernel =
                std::string("attention.") + name + (kv_type == KvType::f16 ? ".f16_cache" : ".f32_cache");
            run_check(checks, kernel, [&] {
                const bool f16 = kv_type == KvType::f16;
                std::vector<int> positions(static_cast<std::size_t>(n));
                for (int t = 0; t < n; ++t) positions[static_cast<std::size_t>(t)] = start + t;
                const auto q = random_floats(rng, static_cast<std::size_t>(n) * n_head * head_dim);
                std::vector<float> want(q.size());
                cpu::attention(want.data(), q.data(), (f16 ? k16 : k_cache).data(), (f16 ? v16 : v_cache).data(),
                               static_cast<std::size_t>(n), positions.data(), n_head, n_head_kv, head_dim, pool);
                const auto dq = upload(q, s), dpos = upload(positions.data(), positions.size() * sizeof(int), s);
                const auto dk = f16 ? upload_f16(k_cache, s) : upload(k_cache, s);
                const auto dv = f16 ? upload_f16(v_cache, s) : upload(v_cache, s);
                const auto scratch =
                    gpu::DeviceBuffer::zeroed(gpu::attention_scratch_bytes(n, n_head, head_dim, n_ctx), s);
                gpu::DeviceBuffer out(q.size() * sizeof(float));
                gpu::attention(out.as<float>(), dq.as<float>(), {dk.data(), dv.data()}, kv_type, n, dpos.as<int>(),
                               n_head, n_head_kv, head_dim, start + n, scratch.as<float>(), s);
                auto got = download(out, q.size(), s);
                const bool tensor = f16 && n >= 16 && gpu::attention_on_tensor_cores(kv_type, head_dim);
                return compare(kernel, got, want, tensor ? f16_attention_tolerance : f32_tolerance);
            });
        }
    // One decode token as a step runs it: attention turns q and k and stores the token's key and value itself
    // (RopeFirst), with GGUF llama's pairs.
    for (const auto kv_type : {KvType::f32, KvType::f16}) {
        const bool f16 = kv_type == KvType::f16;
        const std::string kernel = std::string("attention.decode.rope_first") + (f16 ? ".f16_cache" : ".f32_cache");
        run_check(checks, kernel, [&] {
            const int position = 300;
            const auto q = random_floats(rng, static_cast<std::size_t>(n_head) * head_dim);
            const auto k = random_floats(rng, kv), v = random_floats(rng, kv);
            auto turned_q = q, turned_k = k;
            cpu::rope(turned_q.data(), 1, n_head, head_dim, inv_freq.data(), &position, RopePairs::adjacent);
            cpu::rope(turned_k.data(), 1, n_head_kv, head_dim, inv_freq.data(), &position, RopePairs::adjacent);
            auto want_k = k_cache, want_v = v_cache;
            std::copy(turned_k.begin(), turned_k.end(), want_k.begin() + static_cast<long>(position) * kv);
            std::copy(v.begin(), v.end(), want_v.begin() + static_cast<long>(position) * kv);
            if (f16) want_k = round_to_f16(std::move(want_k)), want_v = round_to_f16(std::move(want_v));
            std::vector<float> want(q.size());
            cpu::attention(want.data(), turned_q.data(), want_k.data(), want_v.data(), 1, &position, n_head, n_head_kv,
                           head_dim, pool);
            const auto dq = upload(q, s), dk = upload(k, s), dv = upload(v, s);
            const auto dpos = upload(&position, sizeof(int), s);
            const auto cache_k = f16 ? upload_f16(k_cache, s) : upload(k_cache, s);
            const auto cache_v = f16 ? upload_f16(v_cache, s) : upload(v_cache, s);
            const auto scratch = gpu::DeviceBuffer::zeroed(gpu::attention_scratch_bytes(1, n_head, head_dim, n_ctx), s);
            gpu::DeviceBuffer out(q.size() * sizeof(float));
            const gpu::RopeFirst rope{dk.as<float>(), dv.as<float>(), dfreq.as<float>(), RopePairs::adjacent};
            gpu::attention(out.as<float>(), dq.as<float>(), {cache_k.data(), cache_v.data()}, kv_type, 1,
                           dpos.as<int>(), n_head, n_head_kv, head_dim, position + 1, scratch.as<float>(), s, nullptr,
                           &rope);
            auto got = download(out, q.size(), s);
            // A rotation computed in another order may round the key to the neighbouring f16.
            return compare(kernel, got, want, f16 ? f16_rounding_tolerance : f32_tolerance);
        });
    }
}

void check_all(std::vector<KernelCheck>& checks) {
    std::mt19937 rng(20261205);
    cpu::ThreadPool pool(0);
    const gpu::Stream s;
    // d_in: whole 256-weight K-quant blocks. d_out: a multiple of the matrix-vector kernel's rows per block
    // (4 rows for 1 token, 2 for 3, 1 for 7), not of the tiled kernel's 64.
    const int d_in = 512, d_out = 68;
    const gpu::Blas blas(s, 48 * d_in, static_cast<std::size_t>(d_out) * d_in);
    std::vector<Weights> formats;
    for (const auto dtype :
         {DType::f32, DType::bf16, DType::f16, DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k})
        formats.push_back(make_weights(rng, dtype, d_out, d_in, s));
    for (const auto type : {WeightType::q8, WeightType::q4})
        formats.push_back(make_quantized(rng, type, d_out, d_in, s));
    for (const auto& w : formats) check_products(checks, w, d_in, d_out, blas, rng, pool, s);
    // The fused kernels of a BF16 model and of a Q4_K_M GGUF's gate and up.
    for (const auto dtype : {DType::bf16, DType::q4_k}) {
        const auto a = make_weights(rng, dtype, d_out, d_in, s), b = make_weights(rng, dtype, d_out, d_in, s);
        check_fused(checks, a, b, d_in, d_out, rng, pool, s);
    }
    check_elementwise(checks, rng, s);
    check_attention(checks, rng, pool, s);
}

}  // namespace

std::vector<KernelCheck> check_gpu_kernels() {
    std::vector<KernelCheck> checks;
    // The BLAS is checked whether or not an earlier check turned it off: what it gives now decides.
    gpu::set_blas_checked(true);
    try {
        check_all(checks);
    } catch (const std::exception& e) {
        // Setup between checks failed, most likely on an error a kernel left behind: the check before it
        // names the kernel, and this says what the runtime said.
        KernelCheck failed;
        failed.kernel = "gpu setup after " + (checks.empty() ? std::string("nothing") : checks.back().kernel);
        failed.failure = e.what();
        checks.push_back(std::move(failed));
    }
    gpu::set_blas_checked(std::none_of(checks.begin(), checks.end(), [](const KernelCheck& c) {
        return c.kernel.rfind("blas.", 0) == 0 && !c.passed();
    }));
    return checks;
}

GpuRates measure_gpu_rates() {
    GpuRates rates;
    rates.upload_gbps = pinned_h2d_gbs();
    const gpu::Stream s;
    const int d = 4096, n_tokens = 512;
    std::mt19937 rng(3);
    const auto w = random_weights(rng, DType::bf16, d, d);
    const auto dw = upload(w.data(), w.size(), s);
    const auto dx = upload(random_floats(rng, static_cast<std::size_t>(n_tokens) * d), s);
    gpu::DeviceBuffer out(static_cast<std::size_t>(n_tokens) * d * 4);
    const gpu::Blas blas(s, static_cast<std::size_t>(n_tokens) * d);
    const gpu::Blas* with = gpu::Blas::available() ? &blas : nullptr;
    const gpu::Event start(true), stop(true);
    for (int pass = 0; pass < 3; ++pass) {
        start.record(s);
        gpu::matmul(out.as<float>(), dx.as<float>(), dw.data(), WeightType::bf16, nullptr, WeightType::f32, nullptr,
                    n_tokens, d, d, s, with);
        stop.record(s);
        stop.synchronize();
        const double seconds = stop.elapsed_ms_since(start) / 1e3;
        rates.matrix_tflops = std::max(rates.matrix_tflops, 2.0 * d * d * n_tokens / seconds / 1e12);
    }
    rates.matrix_on = with ? gpu::Blas::description() : "ollama-airllm's own kernels";
    return rates;
}

}  // namespace runner::selftest
