// Every GPU kernel against the CPU kernel it replaces (the reference), on random data, for the
// shapes and dtypes the engine uses; tolerances scale with the magnitude of the result.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"
#include "runner/backend/gpu/backend.h"
#include "runner/model/gguf.h"
#include "runner/model/gguf_model.h"
#include "runner/offload/layer_slab.h"
#include "runner/offload/quantize.h"
#include "runner/selftest/test_data.h"

namespace gpu = runner::gpu;

namespace {

std::mt19937 rng(1234);

std::vector<float> random_floats(std::size_t n, float scale = 1.f) {
    return runner::selftest::random_floats(rng, n, scale);
}

// A weight tensor in host memory in one of the stored dtypes (selftest's random weights: finite 16-bit
// floats of both signs, f16 denormals among them), with its device copy.
struct Weight {
    runner::DType dtype;
    std::vector<std::byte> bytes;
    gpu::DeviceBuffer device;
    runner::TensorView view;

    Weight(runner::DType type, std::vector<std::int64_t> shape, const gpu::Stream& s) : dtype(type) {
        const auto rows = static_cast<std::size_t>(shape.size() < 2 ? 1 : shape[0]);
        const auto cols = static_cast<std::size_t>(shape.back());
        bytes = runner::selftest::random_weights(rng, type, rows, cols);
        device = gpu::DeviceBuffer(bytes.size());
        gpu::copy_to_device(device.data(), bytes.data(), bytes.size(), s);
        view = runner::selftest::view_of(bytes, type, rows, cols);
        view.shape = std::move(shape);
    }
    runner::WeightType type() const {
        return dtype == runner::DType::bf16  ? runner::WeightType::bf16
               : dtype == runner::DType::f16 ? runner::WeightType::f16
                                             : runner::WeightType::f32;
    }
};

gpu::DeviceBuffer upload(const std::vector<float>& v, const gpu::Stream& s) {
    gpu::DeviceBuffer b(v.size() * sizeof(float));
    gpu::copy_to_device(b.data(), v.data(), v.size() * sizeof(float), s);
    return b;
}

// v as an f32 tensor of `shape`: the CPU reference's weights or norm.
runner::TensorView f32_view(const std::vector<float>& v, std::vector<std::int64_t> shape) {
    runner::TensorView view;
    view.dtype = runner::DType::f32;
    view.shape = std::move(shape);
    view.data = reinterpret_cast<const std::byte*>(v.data());
    view.bytes = v.size() * sizeof(float);
    return view;
}

// Random BF16 weights [d_out, d_in] in our q8 or q4, on the device, beside the f32 values they dequantize
// to (`wide` views them): the CPU reference multiplies those.
struct QuantizedWeight {
    std::vector<float> values;
    runner::TensorView wide;
    gpu::DeviceBuffer device;
};

gpu::DeviceBuffer upload_ints(const std::vector<int>& v, const gpu::Stream& s) {
    gpu::DeviceBuffer b(v.size() * sizeof(int));
    gpu::copy_to_device(b.data(), v.data(), v.size() * sizeof(int), s);
    return b;
}

// f16 bit patterns of v, rounded to nearest even as the GPU's conversions round.
std::vector<std::uint16_t> f16_bits(const std::vector<float>& v) {
    std::vector<std::uint16_t> bits(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto h = static_cast<_Float16>(v[i]);
        std::memcpy(&bits[i], &h, 2);
    }
    return bits;
}

// v as an f16 cache.
gpu::DeviceBuffer upload_f16(const std::vector<float>& v, const gpu::Stream& s) {
    const auto halves = f16_bits(v);
    gpu::DeviceBuffer b(halves.size() * 2);
    gpu::copy_to_device(b.data(), halves.data(), halves.size() * 2, s);
    s.synchronize();
    return b;
}

std::vector<std::uint16_t> download_bits(const gpu::DeviceBuffer& b, std::size_t n, const gpu::Stream& s) {
    std::vector<std::uint16_t> bits(n);
    gpu::copy_to_host(bits.data(), b.data(), n * 2, s);
    s.synchronize();
    return bits;
}

std::vector<float> download(const gpu::DeviceBuffer& b, std::size_t n, const gpu::Stream& s) {
    std::vector<float> v(n);
    gpu::copy_to_host(v.data(), b.data(), n * sizeof(float), s);
    s.synchronize();
    return v;
}

QuantizedWeight quantized_weight(runner::WeightType type, int d_out, int d_in, const gpu::Stream& s) {
    Weight source(runner::DType::bf16, {d_out, d_in}, s);
    std::vector<std::byte> q(runner::quant_bytes(type, d_out, d_in));
    runner::quantize_matrix(source.view, type, q.data(), 2);
    QuantizedWeight w;
    w.values.resize(static_cast<std::size_t>(d_out) * d_in);
    for (int j = 0; j < d_out; ++j)
        for (int i = 0; i < d_in; ++i)
            w.values[static_cast<std::size_t>(j) * d_in + static_cast<std::size_t>(i)] = runner::dequantized(
                q.data(), type, d_out, d_in, static_cast<std::size_t>(j), static_cast<std::size_t>(i));
    w.wide = f32_view(w.values, {d_out, d_in});
    w.device = gpu::DeviceBuffer(q.size());
    gpu::copy_to_device(w.device.data(), q.data(), q.size(), s);
    s.synchronize();
    return w;
}

// max |a - b| relative to max |reference|.
float relative_error(const std::vector<float>& ours, const std::vector<float>& reference) {
    REQUIRE(ours.size() == reference.size());
    float worst = 0, scale = 1e-6f;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        REQUIRE(std::isfinite(ours[i]));
        worst = std::max(worst, std::abs(ours[i] - reference[i]));
        scale = std::max(scale, std::abs(reference[i]));
    }
    return worst / scale;
}

constexpr float tolerance = 2e-5f;

}  // namespace

TEST_CASE("gpu matmul: bf16, f16 and f32 weights, decode and prompt shapes, with and without bias") {
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    for (const auto dtype : {runner::DType::bf16, runner::DType::f16, runner::DType::f32})
        for (const int n_tokens : {1, 3, 8, 9, 70})
            for (const auto& [d_in, d_out] : {std::pair{64, 96}, std::pair{256, 130}, std::pair{200, 70}})
                for (const bool with_bias : {false, true}) {
                    CAPTURE(runner::dtype_name(dtype));
                    CAPTURE(n_tokens);
                    CAPTURE(d_in);
                    CAPTURE(with_bias);
                    Weight w(dtype, {d_out, d_in}, s);
                    Weight bias(dtype, {d_out}, s);
                    const auto x = random_floats(static_cast<std::size_t>(n_tokens) * d_in);
                    std::vector<float> want(static_cast<std::size_t>(n_tokens) * d_out);
                    runner::cpu::matmul(want.data(), x.data(), w.view, with_bias ? &bias.view : nullptr,
                                        static_cast<std::size_t>(n_tokens), pool);
                    const auto dx = upload(x, s);
                    gpu::DeviceBuffer out(want.size() * sizeof(float));
                    gpu::matmul(out.as<float>(), dx.as<float>(), w.device.data(), w.type(),
                                with_bias ? bias.device.data() : nullptr, bias.type(), nullptr, n_tokens, d_in, d_out,
                                s);
                    CHECK(relative_error(download(out, want.size(), s), want) < tolerance);
                }
}

// The fused forms against the CPU's separate steps: rmsnorm, each product (with biases), the gate,
// the residual add. Decode shapes take the fused kernel, longer passes the separate launches (and the
// BLAS where there is one); d_in 2056 leaves a partial last round of loads.
TEST_CASE("gpu matmul_add, norm_matmul, norm_matmul_swiglu and norm_mlp equal the CPU's separate steps") {
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const gpu::Blas blas(s, 70 * 256);
    for (const auto dtype : {runner::DType::bf16, runner::DType::f16, runner::DType::f32})
        for (const int n_tokens : {1, 2, 3, 5, 8, 9, 70})
            for (const auto& [d_in, d_out] : {std::pair{256, 96}, std::pair{200, 70}, std::pair{2056, 33}})
                for (const bool on_blas : {false, true}) {
                    CAPTURE(runner::dtype_name(dtype));
                    CAPTURE(n_tokens);
                    CAPTURE(d_in);
                    CAPTURE(on_blas);
                    if (on_blas && (!gpu::Blas::available() || n_tokens * d_in > 70 * 256)) continue;
                    const gpu::Blas* with = on_blas ? &blas : nullptr;
                    const bool rounded = on_blas && n_tokens >= gpu::blas_min_tokens && dtype != runner::DType::f32;
                    const float allowed = rounded ? 1e-2f : tolerance;
                    const auto n = static_cast<std::size_t>(n_tokens);
                    Weight gate(dtype, {d_out, d_in}, s), up(dtype, {d_out, d_in}, s),
                        third(dtype, {d_out + 5, d_in}, s);
                    Weight norm(dtype, {d_in}, s), bias(dtype, {d_out + 5}, s);
                    const auto x = random_floats(n * d_in, 3.f);
                    const auto dx = upload(x, s);
                    std::vector<float> normed(x.size());
                    runner::cpu::rmsnorm(normed.data(), x.data(), norm.view, n, static_cast<std::size_t>(d_in), 1e-5f);
                    std::vector<float> want_gate(n * d_out), want_up(n * d_out), want_third(n * (d_out + 5));
                    runner::cpu::matmul(want_gate.data(), normed.data(), gate.view, nullptr, n, pool);
                    runner::cpu::matmul(want_up.data(), normed.data(), up.view, nullptr, n, pool);
                    runner::cpu::matmul(want_third.data(), normed.data(), third.view, &bias.view, n, pool);
                    gpu::DeviceBuffer out(want_gate.size() * sizeof(float)), out_up(want_up.size() * sizeof(float)),
                        out_third(want_third.size() * sizeof(float)), scratch(x.size() * sizeof(float));
                    const gpu::Norm gpu_norm{norm.device.data(), norm.type(), 1e-5f};

                    const gpu::Product products[] = {{out.as<float>(), gate.device.data(), gate.type(), d_out},
                                                     {out_up.as<float>(), up.device.data(), up.type(), d_out},
                                                     {out_third.as<float>(), third.device.data(), third.type(),
                                                      d_out + 5, bias.device.data(), bias.type()}};
                    gpu::norm_matmul(products, dx.as<float>(), gpu_norm, scratch.as<float>(), n_tokens, d_in, s, with);
                    CHECK(relative_error(download(out, want_gate.size(), s), want_gate) < allowed);
                    CHECK(relative_error(download(out_up, want_up.size(), s), want_up) < allowed);
                    CHECK(relative_error(download(out_third, want_third.size(), s), want_third) < allowed);
                    if (rounded) {
                        // The BLAS reads the norm written once in 16 bits: the bits of the f32 norm rounded for
                        // each product, as matmul rounds it.
                        gpu::DeviceBuffer normed32(x.size() * sizeof(float)), two_step(out_third.bytes());
                        gpu::rmsnorm(normed32.as<float>(), dx.as<float>(), norm.device.data(), norm.type(), n_tokens,
                                     d_in, 1e-5f, s);
                        gpu::matmul(two_step.as<float>(), normed32.as<float>(), third.device.data(), third.type(),
                                    bias.device.data(), bias.type(), nullptr, n_tokens, d_in, d_out + 5, s, with);
                        CHECK(download(two_step, want_third.size(), s) == download(out_third, want_third.size(), s));
                    }

                    auto want = random_floats(n * d_out, 4.f);
                    auto dr = upload(want, s);
                    for (std::size_t i = 0; i < want.size(); ++i) want[i] += want_gate[i];
                    const auto dn = upload(normed, s);
                    gpu::matmul_add(dr.as<float>(), dn.as<float>(), gate.device.data(), gate.type(),
                                    scratch.as<float>(), n_tokens, d_in, d_out, s, with);
                    CHECK(relative_error(download(dr, want.size(), s), want) < allowed);

                    runner::cpu::swiglu(want_gate.data(), want_up.data(), want_gate.size());
                    gpu::norm_matmul_swiglu(out.as<float>(), out_up.as<float>(), scratch.as<float>(), dx.as<float>(),
                                            gpu_norm, gate.device.data(), up.device.data(), gate.type(), n_tokens, d_in,
                                            d_out, s, with);
                    CHECK(relative_error(download(out, want_gate.size(), s), want_gate) < allowed);

                    // norm_mlp over two blocks of rows (a split layer's MLP) adds both blocks' down products to x,
                    // as the CPU's steps do; and gives the bits of the steps it stands for, norm_matmul_swiglu and
                    // matmul_add per block (on the BLAS: SwiGLU rounded once to 16 bits as matmul_add rounds it).
                    const int rows_b = 9;
                    Weight down(dtype, {d_in, d_out}, s), gate_b(dtype, {rows_b, d_in}, s),
                        up_b(dtype, {rows_b, d_in}, s), down_b(dtype, {d_in, rows_b}, s);
                    std::vector<float> act_b(n * rows_b), up_rows_b(n * rows_b), added(x.size());
                    runner::cpu::matmul(act_b.data(), normed.data(), gate_b.view, nullptr, n, pool);
                    runner::cpu::matmul(up_rows_b.data(), normed.data(), up_b.view, nullptr, n, pool);
                    runner::cpu::swiglu(act_b.data(), up_rows_b.data(), act_b.size());
                    auto want_x = x;
                    runner::cpu::matmul(added.data(), want_gate.data(), down.view, nullptr, n, pool);
                    for (std::size_t i = 0; i < x.size(); ++i) want_x[i] += added[i];
                    runner::cpu::matmul(added.data(), act_b.data(), down_b.view, nullptr, n, pool);
                    for (std::size_t i = 0; i < x.size(); ++i) want_x[i] += added[i];
                    const gpu::MlpBlock blocks[] = {
                        {gate.device.data(), up.device.data(), down.device.data(), d_out},
                        {gate_b.device.data(), up_b.device.data(), down_b.device.data(), rows_b}};
                    const auto all_rows = n * static_cast<std::size_t>(d_out + rows_b);
                    gpu::DeviceBuffer mlp_gate(all_rows * sizeof(float)), mlp_up(all_rows * sizeof(float));
                    auto fused_x = upload(x, s), steps_x = upload(x, s);
                    gpu::norm_mlp(fused_x.as<float>(), gpu_norm, blocks, gate.type(), down.type(), mlp_gate.as<float>(),
                                  mlp_up.as<float>(), scratch.as<float>(), n_tokens, d_in, s, with);
                    const auto got_x = download(fused_x, x.size(), s);
                    CHECK(relative_error(got_x, want_x) < allowed);
                    std::size_t offset = 0;
                    for (const auto& b : blocks) {
                        gpu::norm_matmul_swiglu(mlp_gate.as<float>() + offset, mlp_up.as<float>() + offset,
                                                scratch.as<float>(), steps_x.as<float>(), gpu_norm, b.gate, b.up,
                                                gate.type(), n_tokens, d_in, b.rows, s, with);
                        offset += n * static_cast<std::size_t>(b.rows);
                    }
                    offset = 0;
                    for (const auto& b : blocks) {
                        gpu::matmul_add(steps_x.as<float>(), mlp_gate.as<float>() + offset, b.down, down.type(),
                                        mlp_up.as<float>(), n_tokens, b.rows, d_in, s, with);
                        offset += n * static_cast<std::size_t>(b.rows);
                    }
                    CHECK(download(steps_x, x.size(), s) == got_x);
                }
}

// Products of different weight types (a Q4_K_M layer's q and k in Q4_K, v in Q6_K): a decode token takes
// a fused launch per type, each normalizing as it reads, the first and third product in one (18 rows: not
// whole blocks of several rows, so a row per block); a prompt takes the separate path (rmsnorm into the
// scratch, then each product).
TEST_CASE("gpu norm_matmul with products of different weight types runs each, normalized") {
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const int d_in = 256, d_out = 40;
    for (const int n_tokens : {1, 3, 12}) {
        CAPTURE(n_tokens);
        const auto n = static_cast<std::size_t>(n_tokens);
        Weight a(runner::DType::bf16, {d_out, d_in}, s), b(runner::DType::f32, {d_out, d_in}, s),
            c(runner::DType::bf16, {18, d_in}, s);
        Weight norm(runner::DType::bf16, {d_in}, s);
        const auto x = random_floats(n * d_in, 2.f);
        std::vector<float> normed(x.size()), want_a(n * d_out), want_b(n * d_out), want_c(n * 18);
        runner::cpu::rmsnorm(normed.data(), x.data(), norm.view, n, d_in, 1e-6f);
        runner::cpu::matmul(want_a.data(), normed.data(), a.view, nullptr, n, pool);
        runner::cpu::matmul(want_b.data(), normed.data(), b.view, nullptr, n, pool);
        runner::cpu::matmul(want_c.data(), normed.data(), c.view, nullptr, n, pool);
        const auto dx = upload(x, s);
        gpu::DeviceBuffer out_a(want_a.size() * 4), out_b(want_b.size() * 4), out_c(want_c.size() * 4),
            scratch(x.size() * 4);
        const gpu::Product products[] = {{out_a.as<float>(), a.device.data(), a.type(), d_out},
                                         {out_b.as<float>(), b.device.data(), b.type(), d_out},
                                         {out_c.as<float>(), c.device.data(), c.type(), 18}};
        gpu::norm_matmul(products, dx.as<float>(), {norm.device.data(), norm.type(), 1e-6f}, scratch.as<float>(),
                         n_tokens, d_in, s);
        CHECK(relative_error(download(out_a, want_a.size(), s), want_a) < tolerance);
        CHECK(relative_error(download(out_b, want_b.size(), s), want_b) < tolerance);
        CHECK(relative_error(download(out_c, want_c.size(), s), want_c) < tolerance);
        if (n_tokens > 8) CHECK(relative_error(download(scratch, x.size(), s), normed) < tolerance);
    }
}

TEST_CASE("gpu rmsnorm and swiglu match the CPU") {
    gpu::Stream s;
    for (const auto dtype : {runner::DType::f32, runner::DType::bf16}) {
        const int rows = 5, n = 300;
        Weight w(dtype, {n}, s);
        const auto x = random_floats(rows * n, 3.f);
        std::vector<float> want(x.size());
        runner::cpu::rmsnorm(want.data(), x.data(), w.view, rows, n, 1e-6f);
        const auto dx = upload(x, s);
        gpu::DeviceBuffer out(x.size() * sizeof(float));
        gpu::rmsnorm(out.as<float>(), dx.as<float>(), w.device.data(), w.type(), rows, n, 1e-6f, s);
        CHECK(relative_error(download(out, x.size(), s), want) < tolerance);
    }

    const auto gate = random_floats(1000, 2.f), up = random_floats(1000);
    auto want = gate;
    runner::cpu::swiglu(want.data(), up.data(), want.size());
    auto dg = upload(gate, s);
    const auto du = upload(up, s);
    gpu::swiglu(dg.as<float>(), du.as<float>(), gate.size(), s);
    CHECK(relative_error(download(dg, gate.size(), s), want) < tolerance);
}

// rope_store_kv then attention, as a layer runs them: the new tokens' keys and values land in the
// cache at their positions, and attention reads them with the rest.
TEST_CASE("gpu rope_store_kv and attention match the CPU for a prompt and for decode steps past a key tile") {
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const auto round_f16 = [](std::vector<float> v) {
        for (auto& e : v) e = static_cast<float>(static_cast<_Float16>(e));
        return v;
    };
    for (const int head_dim : {64, 128, 256}) {
        CAPTURE(head_dim);
        const int n_head = 4, n_head_kv = 2, n_ctx = 1300, kv = n_head_kv * head_dim;
        std::vector<float> inv_freq(static_cast<std::size_t>(head_dim / 2));
        for (std::size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = std::pow(10000.f, -2.f * static_cast<float>(i) / static_cast<float>(head_dim));
        const auto dfreq = upload(inv_freq, s);
        const auto k_cache = random_floats(static_cast<std::size_t>(n_ctx) * kv);
        const auto v_cache = random_floats(static_cast<std::size_t>(n_ctx) * kv);
        // A 70-token prompt from 0, a 20-token chunk of a prompt at 1100 (the tiled prompt kernel), a 200-token
        // chunk at 300 (two blocks of queries, each over tiles of keys copied while the last is used), and 3
        // decode tokens past the first key tile and split.
        for (const auto& [start, n] :
             {std::pair{0, 70}, std::pair{1100, 20}, std::pair{300, 200}, std::pair{1200, 3}}) {
            CAPTURE(start);
            // GGUF llama models' RoPE pairs on the prompt chunk, Hugging Face's on the others
            const auto pairs = start == 1100 ? runner::RopePairs::adjacent : runner::RopePairs::half;
            const auto rows = static_cast<std::size_t>(n);
            std::vector<int> positions(rows);
            for (int t = 0; t < n; ++t) positions[static_cast<std::size_t>(t)] = start + t;
            const auto dpos = upload_ints(positions, s);

            const auto q = random_floats(rows * n_head * head_dim);
            const auto k_new = random_floats(rows * kv), v_new = random_floats(rows * kv);
            auto want_q = q, want_k = k_new;
            runner::cpu::rope(want_q.data(), rows, n_head, static_cast<std::size_t>(head_dim), inv_freq.data(),
                              positions.data(), pairs);
            runner::cpu::rope(want_k.data(), rows, n_head_kv, static_cast<std::size_t>(head_dim), inv_freq.data(),
                              positions.data(), pairs);
            auto want_k_cache = k_cache, want_v_cache = v_cache;
            for (std::size_t t = 0; t < rows; ++t) {
                const auto at = static_cast<std::size_t>(positions[t]) * kv;
                std::copy_n(want_k.begin() + static_cast<long>(t * kv), kv,
                            want_k_cache.begin() + static_cast<long>(at));
                std::copy_n(v_new.begin() + static_cast<long>(t * kv), kv,
                            want_v_cache.begin() + static_cast<long>(at));
            }

            auto dq = upload(q, s), dkn = upload(k_new, s);
            const auto dvn = upload(v_new, s);
            auto dk = upload(k_cache, s), dv = upload(v_cache, s);
            gpu::rope_store_kv(dq.as<float>(), dkn.as<float>(), dvn.as<float>(), {dk.data(), dv.data()},
                               runner::KvType::f32, n, n_head, n_head_kv, head_dim, dfreq.as<float>(), dpos.as<int>(),
                               pairs, s);
            CHECK(relative_error(download(dq, q.size(), s), want_q) < tolerance);
            CHECK(relative_error(download(dkn, k_new.size(), s), want_k) < tolerance);
            CHECK(relative_error(download(dk, k_cache.size(), s), want_k_cache) < tolerance);
            CHECK(download(dv, v_cache.size(), s) == want_v_cache);

            std::vector<float> want(q.size());
            runner::cpu::attention(want.data(), want_q.data(), want_k_cache.data(), want_v_cache.data(), rows,
                                   positions.data(), n_head, n_head_kv, static_cast<std::size_t>(head_dim), pool);
            // One block per (token, KV group), and the keys split across blocks with their partials merged.
            gpu::DeviceBuffer out(q.size() * sizeof(float));
            gpu::attention(out.as<float>(), dq.as<float>(), {dk.data(), dv.data()}, runner::KvType::f32, n,
                           dpos.as<int>(), n_head, n_head_kv, head_dim, n_ctx, nullptr, s);
            CHECK(relative_error(download(out, q.size(), s), want) < tolerance);
            const auto scratch_bytes = gpu::attention_scratch_bytes(n, n_head, head_dim, n_ctx);
            if (n < 16) CHECK(scratch_bytes > 0);  // few (token, head) pairs: split
            const auto scratch = gpu::DeviceBuffer::zeroed(scratch_bytes, s);
            gpu::DeviceBuffer split_out(q.size() * sizeof(float));
            gpu::attention(split_out.as<float>(), dq.as<float>(), {dk.data(), dv.data()}, runner::KvType::f32, n,
                           dpos.as<int>(), n_head, n_head_kv, head_dim, n_ctx, scratch.as<float>(), s);
            CHECK(relative_error(download(split_out, q.size(), s), want) < tolerance);

            // An f16 cache: the old rows rounded on the host, the new ones written by rope_store_kv, which must
            // round to nearest even as the host does; then attention against the CPU on the keys and values the
            // cache holds. The tensor-core prompt kernel also rounds queries and probabilities to f16. The rows
            // past the chunk's last position hold NaN, as rows no pass has written may: the kernels must neither
            // read them nor let a masked score times such a value into the sums.
            const auto written = static_cast<std::size_t>(start + n) * kv;
            const auto unwritten_nan = [written](std::vector<float> v) {
                std::fill(v.begin() + static_cast<long>(written), v.end(), std::numeric_limits<float>::quiet_NaN());
                return v;
            };
            auto hk = upload_f16(unwritten_nan(k_cache), s), hv = upload_f16(unwritten_nan(v_cache), s);
            auto dq2 = upload(q, s), dkn2 = upload(k_new, s);
            gpu::rope_store_kv(dq2.as<float>(), dkn2.as<float>(), dvn.as<float>(), {hk.data(), hv.data()},
                               runner::KvType::f16, n, n_head, n_head_kv, head_dim, dfreq.as<float>(), dpos.as<int>(),
                               pairs, s);
            const auto rotated_k = download(dkn2, k_new.size(), s);
            const auto bits = download_bits(hk, k_cache.size(), s), v_bits = download_bits(hv, v_cache.size(), s);
            const auto host_k = f16_bits(rotated_k), host_v = f16_bits(v_new);
            for (std::size_t t = 0; t < rows; ++t) {
                const auto at = static_cast<long>(static_cast<std::size_t>(positions[t]) * kv);
                CHECK(std::equal(host_k.begin() + static_cast<long>(t * kv),
                                 host_k.begin() + static_cast<long>((t + 1) * kv), bits.begin() + at));
                CHECK(std::equal(host_v.begin() + static_cast<long>(t * kv),
                                 host_v.begin() + static_cast<long>((t + 1) * kv), v_bits.begin() + at));
            }
            auto rounded_k = round_f16(want_k_cache), rounded_v = round_f16(want_v_cache);
            rounded_k.resize(written);
            rounded_v.resize(written);
            std::vector<float> got_k(written);
            for (std::size_t i = 0; i < written; ++i) {
                _Float16 h;
                std::memcpy(&h, &bits[i], 2);
                got_k[i] = static_cast<float>(h);
            }
            CHECK(relative_error(got_k, rounded_k) < 1e-3f);  // a rotation may round to the neighbouring f16
            std::vector<float> want_f16(q.size());
            runner::cpu::attention(want_f16.data(), want_q.data(), got_k.data(), rounded_v.data(), rows,
                                   positions.data(), n_head, n_head_kv, static_cast<std::size_t>(head_dim), pool);
            const bool tensor = n >= 16 && gpu::attention_on_tensor_cores(runner::KvType::f16, head_dim);
            CAPTURE(tensor);
            gpu::attention(split_out.as<float>(), dq2.as<float>(), {hk.data(), hv.data()}, runner::KvType::f16, n,
                           dpos.as<int>(), n_head, n_head_kv, head_dim, n_ctx, scratch.as<float>(), s);
            CHECK(relative_error(download(split_out, q.size(), s), want_f16) < (tensor ? 5e-3f : tolerance));
        }
    }
}

// Decode splits the keys across blocks; each block serves every query head of a group (up to 4 at a
// time), so shapes with 1, 3, 4 and 7 heads per group and a context far past the split sizes are checked;
// head_dim 10 makes rows that are not whole 16-byte pieces, which decode copies element by element.
TEST_CASE("gpu decode attention over a long context reads every key for every head of a group") {
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    struct Shape {
        int n_head, n_head_kv, head_dim;
    };
    for (const auto& [n_head, n_head_kv, head_dim] :
         {Shape{32, 8, 128}, Shape{28, 4, 96}, Shape{8, 8, 64}, Shape{6, 2, 10}}) {
        CAPTURE(n_head);
        CAPTURE(head_dim);
        const int n_ctx = 20000, n = 3, kv = n_head_kv * head_dim;
        auto k_cache = random_floats(static_cast<std::size_t>(n_ctx) * kv);
        auto v_cache = random_floats(static_cast<std::size_t>(n_ctx) * kv);
        // The keys near the start score highest for query 0, so that a block which skipped them shows.
        for (std::size_t i = 0; i < 64 * static_cast<std::size_t>(kv); ++i) k_cache[i] *= 3.f;
        const auto dk = upload(k_cache, s), dv = upload(v_cache, s);
        const std::vector<int> positions = {19990, 19991, 12};
        const auto dpos = upload_ints(positions, s);
        const auto q = random_floats(static_cast<std::size_t>(n) * n_head * head_dim);
        const auto dq = upload(q, s);
        std::vector<float> want(q.size());
        runner::cpu::attention(want.data(), q.data(), k_cache.data(), v_cache.data(), static_cast<std::size_t>(n),
                               positions.data(), n_head, n_head_kv, static_cast<std::size_t>(head_dim), pool);
        const auto scratch = gpu::DeviceBuffer::zeroed(gpu::attention_scratch_bytes(n, n_head, head_dim, n_ctx), s);
        gpu::DeviceBuffer out(q.size() * sizeof(float));
        // The keys in use (the last position + 1) divided among the blocks, or the cache's whole capacity.
        for (float* partials : {static_cast<float*>(nullptr), scratch.as<float>()})
            for (const int n_keys : {n_ctx, 19992}) {
                CAPTURE(partials != nullptr);
                CAPTURE(n_keys);
                gpu::attention(out.as<float>(), dq.as<float>(), {dk.data(), dv.data()}, runner::KvType::f32, n,
                               dpos.as<int>(), n_head, n_head_kv, head_dim, n_keys, partials, s);
                CHECK(relative_error(download(out, q.size(), s), want) < tolerance);
            }
        // The same cache split by position: the rows from `near` on in pinned host memory, read over the link
        // (an f16 cache's on NVIDIA since sm_80 copied asynchronously). k_host, v_host: the cache as stored.
        const auto check_far_rows = [&](const auto& k_host, const auto& v_host, const gpu::DeviceBuffer& k_near,
                                        const gpu::DeviceBuffer& v_near, runner::KvType type,
                                        std::initializer_list<int> nears) {
            for (const int near : nears) {
                CAPTURE(near);
                const auto skip = static_cast<std::size_t>(near) * kv;
                const std::size_t far_bytes = (k_host.size() - skip) * sizeof(k_host[0]);
                const gpu::PinnedBuffer k_far(far_bytes), v_far(far_bytes);
                std::memcpy(k_far.data(), k_host.data() + skip, far_bytes);
                std::memcpy(v_far.data(), v_host.data() + skip, far_bytes);
                gpu::attention(out.as<float>(), dq.as<float>(),
                               {k_near.data(), v_near.data(), near, k_far.data(), v_far.data()}, type, n,
                               dpos.as<int>(), n_head, n_head_kv, head_dim, 19992, scratch.as<float>(), s);
                CHECK(relative_error(download(out, q.size(), s), want) < tolerance);
            }
        };
        check_far_rows(k_cache, v_cache, dk, dv, runner::KvType::f32, {0, 12, 5000, 19991});
        // The f16 cache against the CPU on the rounded keys and values.
        for (auto* v : {&k_cache, &v_cache})
            for (auto& e : *v) e = static_cast<float>(static_cast<_Float16>(e));
        runner::cpu::attention(want.data(), q.data(), k_cache.data(), v_cache.data(), static_cast<std::size_t>(n),
                               positions.data(), n_head, n_head_kv, static_cast<std::size_t>(head_dim), pool);
        const auto hk = upload_f16(k_cache, s), hv = upload_f16(v_cache, s);
        gpu::attention(out.as<float>(), dq.as<float>(), {hk.data(), hv.data()}, runner::KvType::f16, n, dpos.as<int>(),
                       n_head, n_head_kv, head_dim, n_ctx, scratch.as<float>(), s);
        CHECK(relative_error(download(out, q.size(), s), want) < tolerance);
        check_far_rows(f16_bits(k_cache), f16_bits(v_cache), hk, hv, runner::KvType::f16, {0, 5000});
    }
}

TEST_CASE("gpu decode attention writes the output projection's int8 input as that product would quantize it") {
    // Decode attention also writes its output quantized, sparing the output projection its quantizing launch:
    // whether a block writes a head's output or a group's last split merges it, the int8 input must be the
    // one the product makes of attention's f32 output, byte for byte, and so the products equal to the bit.
    gpu::Stream s;
    struct Shape {
        int n_head, n_head_kv, head_dim;
    };
    const auto type = runner::WeightType::q4;
    // Llama 3's heads; groups of 4 heads of 64; a group of 6 (blocks of 4 and 2 heads) with head_dim 96, below
    // the kernel's 128 (whole warps past the head); one head a group; 4 heads of 256, merged in two rounds.
    for (const auto& [n_head, n_head_kv, head_dim] :
         {Shape{32, 8, 128}, Shape{8, 2, 64}, Shape{12, 2, 96}, Shape{4, 4, 256}, Shape{16, 4, 256}})
        for (const int n : {1, 3})
            for (const int n_keys : {40, 9000}) {
                CAPTURE(n_head);
                CAPTURE(head_dim);
                CAPTURE(n);
                CAPTURE(n_keys);
                const int n_ctx = 9000, kv = n_head_kv * head_dim, width = n_head * head_dim, d_out = 64;
                REQUIRE(gpu::attention_writes_int8(n, head_dim));
                REQUIRE(gpu::takes_int8_input(type, n, width));
                const auto hk = upload_f16(random_floats(static_cast<std::size_t>(n_ctx) * kv), s);
                const auto hv = upload_f16(random_floats(static_cast<std::size_t>(n_ctx) * kv), s);
                std::vector<int> positions;
                for (int t = 0; t < n; ++t) positions.push_back(n_keys - n + t);
                const auto dpos = upload_ints(positions, s);
                const auto rows = static_cast<std::size_t>(n) * width;
                const auto dq = upload(random_floats(rows), s);
                const auto scratch =
                    gpu::DeviceBuffer::zeroed(gpu::attention_scratch_bytes(n, n_head, head_dim, n_ctx), s);
                const auto w = quantized_weight(type, d_out, width, s);
                const auto x = random_floats(static_cast<std::size_t>(n) * d_out);
                const auto fused_x = upload(x, s), plain_x = upload(x, s);
                gpu::DeviceBuffer out(rows * sizeof(float)), fused_in(rows * sizeof(float)),
                    plain_in(rows * sizeof(float));
                const auto attend = [&](float* int8_out) {
                    gpu::attention(out.as<float>(), dq.as<float>(), {hk.data(), hv.data()}, runner::KvType::f16, n,
                                   dpos.as<int>(), n_head, n_head_kv, head_dim, n_keys, scratch.as<float>(), s,
                                   int8_out);
                    return download(out, rows, s);
                };
                const auto fused_out = attend(fused_in.as<float>());
                gpu::matmul_add(fused_x.as<float>(), out.as<float>(), w.device.data(), type, fused_in.as<float>(), n,
                                width, d_out, s, nullptr, true);
                CHECK(attend(nullptr) == fused_out);
                gpu::matmul_add(plain_x.as<float>(), out.as<float>(), w.device.data(), type, plain_in.as<float>(), n,
                                width, d_out, s);
                const std::size_t int8_halves = rows * 3 / 4;  // 1.5 bytes an activation
                CHECK(download_bits(fused_in, int8_halves, s) == download_bits(plain_in, int8_halves, s));
                const auto fused = download(fused_x, x.size(), s), plain = download(plain_x, x.size(), s);
                CHECK(fused == plain);
                CHECK(fused != x);
            }
    // Where attention cannot write them (a prompt's pass, a head_dim that is not whole blocks of 32), or a
    // product would not read them (16-bit weights), asking is an error that says so.
    CHECK_FALSE(gpu::attention_writes_int8(16, 128));
    CHECK_FALSE(gpu::attention_writes_int8(1, 80));
    CHECK_FALSE(gpu::takes_int8_input(runner::WeightType::bf16, 1, 4096));
    gpu::DeviceBuffer buffer(4096 * sizeof(float));
    const auto refused = [](const auto& call, const std::string& says) {
        try {
            call();
            FAIL("no error");
        } catch (const gpu::Error& e) {
            CHECK(std::string(e.what()).find(says) != std::string::npos);
        }
    };
    refused(
        [&] {
            gpu::attention(buffer.as<float>(), buffer.as<float>(), {buffer.data(), buffer.data()}, runner::KvType::f16,
                           1, nullptr, 1, 1, 80, 1, nullptr, s, buffer.as<float>());
        },
        "with head_dim 80 cannot be written as int8 activations");
    refused(
        [&] {
            gpu::matmul_add(buffer.as<float>(), buffer.as<float>(), buffer.data(), runner::WeightType::bf16,
                            buffer.as<float>(), 1, 64, 64, s, nullptr, true);
        },
        "int8 activations given for a product that does not take them");
}

// One token's attention with RopeFirst does rope_store_kv's work itself: the same output, int8 input and cache
// bits as rope_store_kv and then attention, whichever block holds the token's key (one split or many; with 6 or 7
// heads a group two blocks of a KV head write the same row; head_dim 96 below the kernel's 128), at position 0 too,
// for both caches and both RoPE pairings, with the token's row in VRAM, the first of the far rows in pinned host
// memory, or among them. Several tokens cannot: each would read keys another block writes.
TEST_CASE("gpu decode attention with RopeFirst turns q and k and stores k and v as rope_store_kv does") {
    gpu::Stream s;
    struct Shape {
        int n_head, n_head_kv, head_dim;
    };
    const int n_ctx = 3000;
    // A cache of n_ctx rows of `row` bytes, rows from `near` on in pinned host memory, from the same bytes each time.
    struct Cache {
        gpu::DeviceBuffer k, v;
        gpu::PinnedBuffer k_far, v_far;
        gpu::KvRows rows;
        std::size_t near_bytes = 0, far_bytes = 0;
        std::vector<std::uint16_t> keys(const gpu::Stream& s) const { return bits(k, k_far, s); }
        std::vector<std::uint16_t> values(const gpu::Stream& s) const { return bits(v, v_far, s); }
        std::vector<std::uint16_t> bits(const gpu::DeviceBuffer& d, const gpu::PinnedBuffer& far,
                                        const gpu::Stream& s) const {
            auto all = download_bits(d, near_bytes / 2, s);
            all.resize((near_bytes + far_bytes) / 2);
            if (far_bytes > 0) std::memcpy(all.data() + near_bytes / 2, far.data(), far_bytes);
            return all;
        }
    };
    const auto make_cache = [&](const std::vector<std::uint16_t>& k, const std::vector<std::uint16_t>& v, int near,
                                std::size_t row) {
        Cache c;
        c.near_bytes = static_cast<std::size_t>(near) * row, c.far_bytes = k.size() * 2 - c.near_bytes;
        c.k = gpu::DeviceBuffer(std::max<std::size_t>(c.near_bytes, 2));
        c.v = gpu::DeviceBuffer(std::max<std::size_t>(c.near_bytes, 2));
        gpu::copy_to_device(c.k.data(), k.data(), c.near_bytes, s);
        gpu::copy_to_device(c.v.data(), v.data(), c.near_bytes, s);
        c.rows = {c.k.data(), c.v.data()};
        if (c.far_bytes > 0) {
            c.k_far = gpu::PinnedBuffer(c.far_bytes), c.v_far = gpu::PinnedBuffer(c.far_bytes);
            std::memcpy(c.k_far.data(), k.data() + c.near_bytes / 2, c.far_bytes);
            std::memcpy(c.v_far.data(), v.data() + c.near_bytes / 2, c.far_bytes);
            c.rows = {c.k.data(), c.v.data(), near, c.k_far.data(), c.v_far.data()};
        }
        s.synchronize();
        return c;
    };
    int case_number = 0;
    for (const auto& [n_head, n_head_kv, head_dim] :
         {Shape{32, 8, 128}, Shape{28, 4, 128}, Shape{12, 2, 96}, Shape{8, 8, 64}, Shape{4, 2, 256}})
        for (const auto kv_type : {runner::KvType::f32, runner::KvType::f16})
            for (const int n_keys : {1, 40, n_ctx})
                for (const int near : {n_ctx, n_keys - 1, 0}) {
                    CAPTURE(n_head);
                    CAPTURE(head_dim);
                    CAPTURE(n_keys);
                    CAPTURE(near);
                    const bool f16 = kv_type == runner::KvType::f16;
                    CAPTURE(f16);
                    const auto pairs = ++case_number % 2 ? runner::RopePairs::half : runner::RopePairs::adjacent;
                    CAPTURE(case_number);
                    const int kv = n_head_kv * head_dim, width = n_head * head_dim;
                    const auto cache_bits = [&] {
                        const auto values = random_floats(static_cast<std::size_t>(n_ctx) * kv);
                        if (f16) return f16_bits(values);
                        std::vector<std::uint16_t> halves(values.size() * 2);
                        std::memcpy(halves.data(), values.data(), values.size() * 4);
                        return halves;
                    };
                    const auto k_bits = cache_bits(), v_bits = cache_bits();
                    const std::size_t row = static_cast<std::size_t>(kv) * (f16 ? 2 : 4);
                    std::vector<float> inv_freq(static_cast<std::size_t>(head_dim / 2));
                    for (std::size_t i = 0; i < inv_freq.size(); ++i)
                        inv_freq[i] = std::pow(500000.f, -2.f * static_cast<float>(i) / static_cast<float>(head_dim));
                    const auto dfreq = upload(inv_freq, s), dpos = upload_ints({n_keys - 1}, s);
                    const auto q = random_floats(static_cast<std::size_t>(width), 2.f);
                    const auto k_new = random_floats(static_cast<std::size_t>(kv), 2.f);
                    const auto dv = upload(random_floats(static_cast<std::size_t>(kv)), s);
                    const auto scratch =
                        gpu::DeviceBuffer::zeroed(gpu::attention_scratch_bytes(1, n_head, head_dim, n_ctx), s);
                    const auto run = [&](Cache& cache, bool first) {
                        auto dq = upload(q, s), dk = upload(k_new, s);
                        gpu::DeviceBuffer out(static_cast<std::size_t>(width) * 4),
                            int8_out(static_cast<std::size_t>(width) * 4);
                        const gpu::RopeFirst rope{dk.as<float>(), dv.as<float>(), dfreq.as<float>(), pairs};
                        if (!first)
                            gpu::rope_store_kv(dq.as<float>(), dk.as<float>(), dv.as<float>(), cache.rows, kv_type, 1,
                                               n_head, n_head_kv, head_dim, dfreq.as<float>(), dpos.as<int>(), pairs,
                                               s);
                        gpu::attention(out.as<float>(), dq.as<float>(), cache.rows, kv_type, 1, dpos.as<int>(), n_head,
                                       n_head_kv, head_dim, n_keys, scratch.as<float>(), s, int8_out.as<float>(),
                                       first ? &rope : nullptr);
                        return std::pair{download_bits(out, static_cast<std::size_t>(width) * 2, s),
                                         download_bits(int8_out, static_cast<std::size_t>(width) * 3 / 4, s)};
                    };
                    auto apart = make_cache(k_bits, v_bits, near, row), fused = make_cache(k_bits, v_bits, near, row);
                    const auto want = run(apart, false), got = run(fused, true);
                    CHECK(got.first == want.first);
                    CHECK(got.second == want.second);
                    const auto keys = fused.keys(s);
                    CHECK(keys == apart.keys(s));
                    CHECK(fused.values(s) == apart.values(s));
                    CHECK(keys != k_bits);  // the token's row was written
                }
    gpu::DeviceBuffer buffer(4096 * sizeof(float));
    const gpu::RopeFirst rope{buffer.as<float>(), buffer.as<float>(), buffer.as<float>(), runner::RopePairs::half};
    CHECK_FALSE(gpu::attention_ropes(3));
    CHECK_THROWS_WITH(gpu::attention(buffer.as<float>(), buffer.as<float>(), {buffer.data(), buffer.data()},
                                     runner::KvType::f16, 3, nullptr, 1, 1, 64, 4, nullptr, s, nullptr, &rope),
                      doctest::Contains("RopeFirst serves one token's decode"));
    const gpu::RopeFirst no_freq{buffer.as<float>(), buffer.as<float>(), nullptr, runner::RopePairs::half};
    CHECK_THROWS_WITH(gpu::attention(buffer.as<float>(), buffer.as<float>(), {buffer.data(), buffer.data()},
                                     runner::KvType::f16, 1, nullptr, 1, 1, 64, 4, nullptr, s, nullptr, &no_freq),
                      doctest::Contains("inverse frequencies"));
}

// One scratch serves decode passes of every length, as the engine's does, so its arrival counters must be
// where every pass looks for them and left at zero: passes of 1, 12 and 3 tokens on Llama-3-8B's heads (8, 96
// and 24 groups of blocks; 32, 16 and 22 splits) alternate, each against the CPU.
TEST_CASE("gpu decode attention: one scratch serves passes of different lengths") {
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const int n_head = 32, n_head_kv = 8, head_dim = 128, n_ctx = 3000, kv = n_head_kv * head_dim;
    const auto k_cache = random_floats(static_cast<std::size_t>(n_ctx) * kv);
    const auto v_cache = random_floats(static_cast<std::size_t>(n_ctx) * kv);
    const auto dk = upload(k_cache, s), dv = upload(v_cache, s);
    std::size_t most = 0;
    for (int n = 1; n < 16; ++n) most = std::max(most, gpu::attention_scratch_bytes(n, n_head, head_dim, n_ctx));
    const auto scratch = gpu::DeviceBuffer::zeroed(most, s);
    for (const int n : {1, 12, 1, 12, 3}) {
        CAPTURE(n);
        std::vector<int> positions(static_cast<std::size_t>(n));
        for (int t = 0; t < n; ++t) positions[static_cast<std::size_t>(t)] = 2000 + 50 * t + n;
        const auto q = random_floats(static_cast<std::size_t>(n) * n_head * head_dim);
        std::vector<float> want(q.size());
        runner::cpu::attention(want.data(), q.data(), k_cache.data(), v_cache.data(), static_cast<std::size_t>(n),
                               positions.data(), n_head, n_head_kv, static_cast<std::size_t>(head_dim), pool);
        const auto dq = upload(q, s), dpos = upload_ints(positions, s);
        gpu::DeviceBuffer out(q.size() * sizeof(float));
        gpu::attention(out.as<float>(), dq.as<float>(), {dk.data(), dv.data()}, runner::KvType::f32, n, dpos.as<int>(),
                       n_head, n_head_kv, head_dim, positions.back() + 1, scratch.as<float>(), s);
        CHECK(relative_error(download(out, q.size(), s), want) < tolerance);
    }
}

// A recorded decode step replays for the next positions: attention's launches for keys of one variant are
// the same, each block finding its token's keys from the position on the device. A shape with 128 query heads
// wants 16 splits, so past 16 tiles each split takes more than one and the tiles per split grow within a
// variant: a graph recorded at 1,100 keys (3 tiles a split) replays at 2,100 (5 a split), and one recorded
// at 71 keys (3 tiles, 2 splits: one of 64 keys, one of 7) at 90. Up to 64 keys one block walks them all
// (a split takes at least two tiles). Each replay gives what launching for its keys gives, to the bit, and
// the CPU's attention.
TEST_CASE("gpu decode attention recorded as a Graph replays for later positions of the same variant") {
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const int n_head = 128, n_head_kv = 8, head_dim = 128, n_ctx = 2200, kv = n_head_kv * head_dim;
    const gpu::KvRows whole;
    CHECK(gpu::attention_variant(1, n_head, 1100, whole) == gpu::attention_variant(1, n_head, 2101, whole));
    CHECK(gpu::attention_variant(1, n_head, 71, whole) == gpu::attention_variant(1, n_head, 91, whole));
    CHECK(gpu::attention_variant(1, n_head, 64, whole) != gpu::attention_variant(1, n_head, 65, whole));
    CHECK(gpu::attention_variant(1, n_head, 128, whole) != gpu::attention_variant(1, n_head, 129, whole));
    CHECK(gpu::attention_variant(1, n_head, 1, whole) == gpu::attention_variant(1, n_head, 64, whole));
    CHECK(gpu::attention_variant(1, n_head, 50, {nullptr, nullptr, 60}) !=
          gpu::attention_variant(1, n_head, 61, {nullptr, nullptr, 60}));

    const auto k_cache = random_floats(static_cast<std::size_t>(n_ctx) * kv);
    const auto v_cache = random_floats(static_cast<std::size_t>(n_ctx) * kv);
    const auto dk = upload(k_cache, s), dv = upload(v_cache, s);
    const auto q = random_floats(static_cast<std::size_t>(n_head) * head_dim);
    const auto dq = upload(q, s);
    const gpu::PinnedBuffer position(sizeof(int));
    gpu::DeviceBuffer dpos(sizeof(int));
    const auto scratch = gpu::DeviceBuffer::zeroed(gpu::attention_scratch_bytes(1, n_head, head_dim, n_ctx), s);
    gpu::DeviceBuffer replayed(q.size() * sizeof(float)), launched(q.size() * sizeof(float));
    const gpu::KvRows cache{dk.data(), dv.data()};
    const auto set_position = [&](int p) {
        s.synchronize();  // the last replay has read the position
        std::memcpy(position.data(), &p, sizeof p);
    };
    for (const auto& [recorded_at, replayed_at] : {std::pair{1099, 2100}, std::pair{70, 89}}) {
        CAPTURE(recorded_at);
        set_position(recorded_at);
        const gpu::Graph graph(s, [&, n_keys = recorded_at + 1] {
            gpu::copy_to_device(dpos.data(), position.data(), sizeof(int), s);
            gpu::attention(replayed.as<float>(), dq.as<float>(), cache, runner::KvType::f32, 1, dpos.as<int>(), n_head,
                           n_head_kv, head_dim, n_keys, scratch.as<float>(), s);
        });
        REQUIRE(graph);
        for (const int p : {recorded_at, replayed_at}) {
            CAPTURE(p);
            set_position(p);
            graph.launch(s);
            const auto got = download(replayed, q.size(), s);
            gpu::attention(launched.as<float>(), dq.as<float>(), cache, runner::KvType::f32, 1, dpos.as<int>(), n_head,
                           n_head_kv, head_dim, p + 1, scratch.as<float>(), s);
            CHECK(got == download(launched, q.size(), s));
            std::vector<float> want(q.size());
            runner::cpu::attention(want.data(), q.data(), k_cache.data(), v_cache.data(), 1, &p, n_head, n_head_kv,
                                   static_cast<std::size_t>(head_dim), pool);
            CHECK(relative_error(got, want) < tolerance);
        }
    }
}

TEST_CASE("gpu Graph: a recording that fails rethrows and leaves the stream running work as it comes") {
    gpu::Stream s;
    const std::vector<float> values = {1.f, 2.f, 3.f};
    gpu::DeviceBuffer x = upload(values, s);
    const gpu::DeviceBuffer y = upload(values, s);
    CHECK_THROWS_WITH_AS(gpu::Graph(s,
                                    [&] {
                                        gpu::add(x.as<float>(), y.as<float>(), values.size(), s);
                                        throw std::runtime_error("a step that cannot be recorded");
                                    }),
                         "a step that cannot be recorded", std::runtime_error);
    // Nothing recorded ran, and the stream runs the next add at once.
    CHECK(download(x, values.size(), s) == values);
    gpu::add(x.as<float>(), y.as<float>(), values.size(), s);
    CHECK(download(x, values.size(), s) == std::vector<float>{2.f, 4.f, 6.f});
}

TEST_CASE("gpu: a failed runtime call is an error naming the call, and the next call is not blamed for it") {
    CHECK_THROWS_WITH_AS(gpu::DeviceBuffer(std::size_t{1} << 62), doctest::Contains("cudaMalloc"), gpu::Error);
    gpu::Stream s;
    auto x = upload(std::vector<float>(64, 2.f), s);
    CHECK_NOTHROW(gpu::swiglu(x.as<float>(), x.as<float>(), 64, s));
    for (const float v : download(x, 64, s)) CHECK(v == doctest::Approx(2.f / (1.f + std::exp(-2.f)) * 2.f));
}

TEST_CASE("gpu matmul on the BLAS: prompt-sized products with activations rounded to the weights' type") {
    if (!gpu::Blas::available()) {
        MESSAGE("this build has no BLAS: matmul runs its own kernels only");
        return;
    }
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const gpu::Blas blas(s, 100 * 256);
    for (const auto dtype : {runner::DType::bf16, runner::DType::f16, runner::DType::f32})
        for (const int n_tokens : {8, 32, 100}) {
            CAPTURE(runner::dtype_name(dtype));
            CAPTURE(n_tokens);
            const int d_in = 256, d_out = 130;
            Weight w(dtype, {d_out, d_in}, s);
            Weight bias(dtype, {d_out}, s);
            const auto x = random_floats(static_cast<std::size_t>(n_tokens) * d_in);
            std::vector<float> want(static_cast<std::size_t>(n_tokens) * d_out);
            runner::cpu::matmul(want.data(), x.data(), w.view, &bias.view, static_cast<std::size_t>(n_tokens), pool);
            const auto dx = upload(x, s);
            gpu::DeviceBuffer out(want.size() * sizeof(float));
            gpu::matmul(out.as<float>(), dx.as<float>(), w.device.data(), w.type(), bias.device.data(), bias.type(),
                        nullptr, n_tokens, d_in, d_out, s, &blas);
            const float error = relative_error(download(out, want.size(), s), want);
            // Below blas_min_tokens, and for f32 weights, the f32 kernels run: exact to rounding.
            const bool on_blas = n_tokens >= gpu::blas_min_tokens && dtype != runner::DType::f32;
            CHECK(error < (on_blas ? 1e-2f : tolerance));
            if (on_blas) CHECK(error > 0);  // it did round: the BLAS path ran
        }
}

namespace {

// Decode (up to 8 tokens) multiplies quantized weights with int8 activations: its reference rounds the
// activations as the CPU's int8 products do, and the GPU's rounding is the same, so the products agree
// to f32 rounding. After an RMS norm the GPU's rsqrt may put an activation at a step's edge on the other
// side (one step of 1/127 of its block's largest): int8_norm_tolerance.
constexpr int decode_tokens = 8;
constexpr float int8_norm_tolerance = 1e-3f;

std::vector<float> as_decode_sees(const std::vector<float>& x, int n_tokens) {
    return n_tokens <= decode_tokens ? runner::selftest::int8_rounded(x) : x;
}

}  // namespace

TEST_CASE("gpu matmul on quantized weights: the kernels read what the quantizer wrote") {
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const gpu::Blas blas(s, 100 * 256, 256 * 130);
    for (const auto type : {runner::WeightType::q8, runner::WeightType::q4})
        for (const int n_tokens : {1, 3, 8, 70}) {
            CAPTURE(static_cast<int>(type));
            CAPTURE(n_tokens);
            const int d_in = 256, d_out = 130;
            // The reference: the CPU product with the dequantized weights in f32.
            const auto quantized = quantized_weight(type, d_out, d_in, s);
            const runner::TensorView& wide = quantized.wide;
            const auto& dq = quantized.device;
            const auto x = random_floats(static_cast<std::size_t>(n_tokens) * d_in);
            std::vector<float> want(static_cast<std::size_t>(n_tokens) * d_out);
            runner::cpu::matmul(want.data(), as_decode_sees(x, n_tokens).data(), wide, nullptr,
                                static_cast<std::size_t>(n_tokens), pool);

            const auto dx = upload(x, s);
            gpu::DeviceBuffer out(want.size() * sizeof(float)), scratch(x.size() * sizeof(float));
            gpu::matmul(out.as<float>(), dx.as<float>(), dq.data(), type, nullptr, runner::WeightType::f32,
                        scratch.as<float>(), n_tokens, d_in, d_out, s);
            CHECK(relative_error(download(out, want.size(), s), want) < tolerance);
            // The fused forms read quantized weights alike: with a norm of ones, the same matrix as gate and
            // up gives silu(y) * y for y the product of the normalized input.
            std::vector<float> ones(static_cast<std::size_t>(d_in), 1.f), normed(x.size());
            const auto ones_view = f32_view(ones, {d_in});
            runner::cpu::rmsnorm(normed.data(), x.data(), ones_view, static_cast<std::size_t>(n_tokens),
                                 static_cast<std::size_t>(d_in), 1e-5f);
            std::vector<float> gated(want.size());
            runner::cpu::matmul(gated.data(), as_decode_sees(normed, n_tokens).data(), wide, nullptr,
                                static_cast<std::size_t>(n_tokens), pool);
            const auto plain = gated;
            runner::cpu::swiglu(gated.data(), plain.data(), gated.size());
            const auto dones = upload(ones, s);
            gpu::DeviceBuffer up(want.size() * sizeof(float));
            gpu::norm_matmul_swiglu(out.as<float>(), up.as<float>(), scratch.as<float>(), dx.as<float>(),
                                    {dones.data(), runner::WeightType::f32, 1e-5f}, dq.data(), dq.data(), type,
                                    n_tokens, d_in, d_out, s);
            CHECK(relative_error(download(out, want.size(), s), gated) < int8_norm_tolerance);
            auto added = download(out, want.size(), s);
            gpu::matmul_add(out.as<float>(), dx.as<float>(), dq.data(), type, scratch.as<float>(), n_tokens, d_in,
                            d_out, s);
            for (std::size_t i = 0; i < added.size(); ++i) added[i] += want[i];
            CHECK(relative_error(download(out, want.size(), s), added) < tolerance);
            // Without a scratch, decode takes the tiled kernel, in f32.
            if (n_tokens <= decode_tokens) {
                std::vector<float> exact(want.size());
                runner::cpu::matmul(exact.data(), x.data(), wide, nullptr, static_cast<std::size_t>(n_tokens), pool);
                gpu::matmul(out.as<float>(), dx.as<float>(), dq.data(), type, nullptr, runner::WeightType::f32, nullptr,
                            n_tokens, d_in, d_out, s);
                const float error = relative_error(download(out, want.size(), s), exact);
                CHECK(error < tolerance);
                CHECK(relative_error(want, exact) > 10 * tolerance);  // the int8 reference did round
            }
            if (gpu::Blas::available() && n_tokens >= gpu::blas_min_tokens) {
                gpu::matmul(out.as<float>(), dx.as<float>(), dq.data(), type, nullptr, runner::WeightType::f32, nullptr,
                            n_tokens, d_in, d_out, s, &blas);
                CHECK(relative_error(download(out, want.size(), s), want) < 1e-2f);
            }
        }
}

namespace {

// tests/fixtures/gguf/blocks.gguf: 4 rows of 512 weights of each type beside gguf's F32 of them.
struct GgufBlocks {
    runner::WeightType type;
    runner::TensorView wide;  // gguf's dequantization, f32
    gpu::DeviceBuffer device;
};

// The fixture's blocks of `name` ("q4_k", ...) and gguf's f32 of them.
std::pair<const runner::GgufTensor*, const runner::GgufTensor*> fixture_tensors(const runner::GgufFile& file,
                                                                                const std::string& name) {
    const runner::GgufTensor *q = nullptr, *f = nullptr;
    for (const auto& t : file.header().tensors) {
        if (t.name == "q." + name) q = &t;
        if (t.name == "f." + name) f = &t;
    }
    REQUIRE(q);
    REQUIRE(f);
    return {q, f};
}

GgufBlocks gguf_blocks(const runner::GgufFile& file, const std::string& name, const gpu::Stream& s) {
    const auto [q, f] = fixture_tensors(file, name);
    GgufBlocks b{runner::stored_type(*runner::engine_dtype(*q->type)), {}, gpu::DeviceBuffer(q->bytes)};
    b.wide.dtype = runner::DType::f32;
    b.wide.shape = {4, 512};
    b.wide.data = file.data(*f).data();
    b.wide.bytes = f->bytes;
    gpu::copy_to_device(b.device.data(), file.data(*q).data(), q->bytes, s);
    s.synchronize();
    return b;
}

}  // namespace

TEST_CASE("gpu matmul on GGUF's blocks: what gguf dequantizes, decode, tiled and BLAS prompts") {
    auto file = runner::GgufFile::open(std::string(OAR_FIXTURES) + "/gguf/blocks.gguf");
    REQUIRE(file.ok());
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const gpu::Blas blas(s, 40 * 512, 4 * 512);
    const int d_out = 4, d_in = 512;
    for (const char* name : {"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"}) {
        const auto w = gguf_blocks(*file, name, s);
        for (const int n_tokens : {1, 3, 20, 40}) {
            CAPTURE(name);
            CAPTURE(n_tokens);
            const auto x = random_floats(static_cast<std::size_t>(n_tokens) * d_in);
            std::vector<float> want(static_cast<std::size_t>(n_tokens) * d_out);
            runner::cpu::matmul(want.data(), as_decode_sees(x, n_tokens).data(), w.wide, nullptr,
                                static_cast<std::size_t>(n_tokens), pool);
            const auto dx = upload(x, s);
            gpu::DeviceBuffer out(want.size() * sizeof(float)), scratch(x.size() * sizeof(float));
            gpu::matmul(out.as<float>(), dx.as<float>(), w.device.data(), w.type, nullptr, runner::WeightType::f32,
                        scratch.as<float>(), n_tokens, d_in, d_out, s);
            CHECK(relative_error(download(out, want.size(), s), want) < tolerance);
            if (gpu::Blas::available() && n_tokens >= gpu::blas_min_tokens) {
                gpu::matmul(out.as<float>(), dx.as<float>(), w.device.data(), w.type, nullptr, runner::WeightType::f32,
                            nullptr, n_tokens, d_in, d_out, s, &blas);
                CHECK(relative_error(download(out, want.size(), s), want) < 1e-2f);
            }
        }
    }
}

// A Q4_K_M layer's q, k and v: Q4_K, Q4_K and Q6_K (Q5_K_M's: Q5_K and Q6_K; Q4_K_S's: Q4_K and Q5_K). Decode
// quantizes the normalized input once and runs one launch for both formats (int8_pair), v's rows between the
// others' here; three formats take two launches. The residual adds of the output and down projections quantize
// theirs.
TEST_CASE("gpu norm_matmul on a K-quant layer's q, k and v shares one int8 input across the types") {
    auto file = runner::GgufFile::open(std::string(OAR_FIXTURES) + "/gguf/blocks.gguf");
    REQUIRE(file.ok());
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    const int d_out = 4, d_in = 512;
    Weight norm(runner::DType::bf16, {d_in}, s);
    using Names = std::array<const char*, 3>;
    for (const auto& names : {Names{"q4_k", "q6_k", "q4_k"}, Names{"q5_k", "q6_k", "q5_k"},
                              Names{"q4_k", "q5_k", "q4_k"}, Names{"q4_k", "q5_k", "q6_k"}}) {
        CAPTURE(names[0]);
        CAPTURE(names[1]);
        CAPTURE(names[2]);
        const GgufBlocks w[] = {gguf_blocks(*file, names[0], s), gguf_blocks(*file, names[1], s),
                                gguf_blocks(*file, names[2], s)};
        for (const int n_tokens : {1, 2, 3, 5}) {
            CAPTURE(n_tokens);
            const auto n = static_cast<std::size_t>(n_tokens);
            const auto x = random_floats(n * d_in, 3.f);
            std::vector<float> normed(x.size());
            runner::cpu::rmsnorm(normed.data(), x.data(), norm.view, n, d_in, 1e-5f);
            const auto seen = runner::selftest::int8_rounded(normed);
            const auto dx = upload(x, s);
            gpu::DeviceBuffer scratch(x.size() * 4);
            std::vector<std::vector<float>> want;
            std::vector<gpu::DeviceBuffer> out;
            std::vector<gpu::Product> products;
            for (const auto& weight : w) {
                want.emplace_back(n * d_out);
                runner::cpu::matmul(want.back().data(), seen.data(), weight.wide, nullptr, n, pool);
                out.emplace_back(want.back().size() * 4);
            }
            for (std::size_t i = 0; i < 3; ++i)
                products.push_back({out[i].as<float>(), w[i].device.data(), w[i].type, d_out});
            gpu::norm_matmul(products, dx.as<float>(), {norm.device.data(), norm.type(), 1e-5f}, scratch.as<float>(),
                             n_tokens, d_in, s);
            for (std::size_t i = 0; i < 3; ++i)
                CHECK(relative_error(download(out[i], want[i].size(), s), want[i]) < int8_norm_tolerance);
        }
    }
}

namespace {

// Decode's plain, residual-adding and gated products of the [d_out, d_in] matrix w (device) against the
// CPU's with `wide`, its f32 values, for 1, 3 and 8 tokens; then two tokens, the first with a NaN among
// its activations: its products are not finite, the second token's are still right.
void check_decode_products(runner::WeightType type, const void* w, const runner::TensorView& wide, int d_out, int d_in,
                           const gpu::Stream& s, runner::cpu::ThreadPool& pool) {
    const std::vector<float> ones(static_cast<std::size_t>(d_in), 1.f);
    const auto ones_view = f32_view(ones, {d_in});
    const auto dones = upload(ones, s);
    for (const int n_tokens : {1, 3, 8}) {
        CAPTURE(n_tokens);
        const auto n = static_cast<std::size_t>(n_tokens);
        const auto x = random_floats(n * d_in);
        std::vector<float> want(n * d_out), normed(x.size()), gated(want.size());
        runner::cpu::matmul(want.data(), as_decode_sees(x, n_tokens).data(), wide, nullptr, n, pool);
        runner::cpu::rmsnorm(normed.data(), x.data(), ones_view, n, static_cast<std::size_t>(d_in), 1e-5f);
        runner::cpu::matmul(gated.data(), as_decode_sees(normed, n_tokens).data(), wide, nullptr, n, pool);
        const auto plain = gated;
        runner::cpu::swiglu(gated.data(), plain.data(), gated.size());
        const auto dx = upload(x, s);
        gpu::DeviceBuffer out(want.size() * 4), up(want.size() * 4), scratch(x.size() * 4);
        gpu::matmul(out.as<float>(), dx.as<float>(), w, type, nullptr, runner::WeightType::f32, scratch.as<float>(),
                    n_tokens, d_in, d_out, s);
        CHECK(relative_error(download(out, want.size(), s), want) < tolerance);
        gpu::matmul_add(out.as<float>(), dx.as<float>(), w, type, scratch.as<float>(), n_tokens, d_in, d_out, s);
        auto twice = want;
        for (auto& v : twice) v *= 2.f;
        CHECK(relative_error(download(out, want.size(), s), twice) < tolerance);
        gpu::norm_matmul_swiglu(out.as<float>(), up.as<float>(), scratch.as<float>(), dx.as<float>(),
                                {dones.data(), runner::WeightType::f32, 1e-5f}, w, w, type, n_tokens, d_in, d_out, s);
        CHECK(relative_error(download(out, want.size(), s), gated) < int8_norm_tolerance);
    }
    auto x = random_floats(2 * static_cast<std::size_t>(d_in));
    x[static_cast<std::size_t>(d_in) / 2 + 3] = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> second(x.begin() + d_in, x.end());
    std::vector<float> want(static_cast<std::size_t>(d_out));
    runner::cpu::matmul(want.data(), as_decode_sees(second, 1).data(), wide, nullptr, 1, pool);
    const auto dx = upload(x, s);
    gpu::DeviceBuffer out(2 * want.size() * 4), scratch(x.size() * 4);
    gpu::matmul(out.as<float>(), dx.as<float>(), w, type, nullptr, runner::WeightType::f32, scratch.as<float>(), 2,
                d_in, d_out, s);
    const auto got = download(out, 2 * want.size(), s);
    for (std::size_t j = 0; j < want.size(); ++j) CHECK_FALSE(std::isfinite(got[j]));
    CHECK(relative_error(std::vector<float>(got.begin() + d_out, got.end()), want) < tolerance);
}

}  // namespace

// Rows as wide as a model's: 4608 weights are 144 pieces of 32, so a block's 128 threads take a second,
// partial round of each row, and the quantization of the input takes 9 thread blocks. GGUF's rows are the
// fixture's repeated along the row (blocks carry their own scales); ours are quantized from random BF16.
TEST_CASE("gpu decode products over rows of a model's width, every quantized format, and a NaN kept to its token") {
    auto file = runner::GgufFile::open(std::string(OAR_FIXTURES) + "/gguf/blocks.gguf");
    REQUIRE(file.ok());
    gpu::Stream s;
    runner::cpu::ThreadPool pool(2);
    constexpr int repeats = 9, d_in = 512 * repeats, d_out = 4;
    for (const char* name : {"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"}) {
        CAPTURE(name);
        const auto [q, f] = fixture_tensors(*file, name);
        const auto blocks = file->data(*q);
        const auto* floats = reinterpret_cast<const float*>(file->data(*f).data());
        const std::size_t row_bytes = q->bytes / d_out;
        std::vector<std::byte> bytes;
        std::vector<float> values;
        for (std::size_t r = 0; r < d_out; ++r)
            for (int k = 0; k < repeats; ++k) {
                bytes.insert(bytes.end(), blocks.begin() + static_cast<std::ptrdiff_t>(r * row_bytes),
                             blocks.begin() + static_cast<std::ptrdiff_t>((r + 1) * row_bytes));
                values.insert(values.end(), floats + r * 512, floats + (r + 1) * 512);
            }
        gpu::DeviceBuffer device(bytes.size());
        gpu::copy_to_device(device.data(), bytes.data(), bytes.size(), s);
        check_decode_products(runner::stored_type(*runner::engine_dtype(*q->type)), device.data(),
                              f32_view(values, {d_out, d_in}), d_out, d_in, s, pool);
    }
    for (const auto type : {runner::WeightType::q8, runner::WeightType::q4}) {
        CAPTURE(static_cast<int>(type));
        const auto quantized = quantized_weight(type, d_out, d_in, s);
        check_decode_products(type, quantized.device.data(), quantized.wide, d_out, d_in, s, pool);
    }
}

// choose_split polls the copy stream with Event::done() while the host computes: it must say "not yet"
// while copies are queued (1 GiB in 16 copies takes milliseconds over any link), "done" once they are,
// and leave no error behind for the next call to report.
TEST_CASE("gpu Event::done is false while copies run and true after them, and leaves no error") {
    const gpu::Stream s;
    constexpr std::size_t bytes = std::size_t{64} << 20;
    const gpu::PinnedBuffer host(bytes);
    gpu::DeviceBuffer device(bytes);
    const gpu::Event done;
    for (int i = 0; i < 16; ++i) gpu::copy_to_device(device.data(), host.data(), bytes, s);
    done.record(s);
    CHECK_FALSE(done.done());
    done.synchronize();
    CHECK(done.done());
    // a later call on the same device still succeeds: the "not ready" status was not left pending
    s.synchronize();
    gpu::copy_to_device(device.data(), host.data(), 1, s);
    s.synchronize();
}
