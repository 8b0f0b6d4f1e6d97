#include "runner/engine/gpu_transformer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <thread>

#include "runner/backend/cpu/simd.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/engine/cpu_layer.h"
#include "runner/engine/transformer.h"
#include "runner/offload/layer_cache.h"

namespace runner {

namespace {

// layer_tensors() order, for reading a slab.
enum Slot { attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w_gate, w_up, w_down };

std::size_t align_up(std::size_t n) { return (n + 255) / 256 * 256; }

// The largest projection, in weights: what the BLAS widens a quantized matrix into.
std::size_t largest_projection(const ModelConfig& c) {
    const std::size_t e = static_cast<std::size_t>(c.n_embd), q = static_cast<std::size_t>(c.n_head) * c.head_dim;
    return std::max({e * q, e * static_cast<std::size_t>(c.n_ff)});
}

// The widest activation a product reads: what the BLAS scratch holds per token, in 16-bit.
std::size_t widest_input(const ModelConfig& c) {
    return static_cast<std::size_t>(std::max({c.n_embd, c.n_head * c.head_dim, c.n_ff}));
}

// Activations of one micro-batch of `n` tokens: xb, q, k, v, att, gate, up, and the BLAS scratch.
std::size_t activation_bytes(const ModelConfig& c, std::size_t n) {
    const std::size_t q = static_cast<std::size_t>(c.n_head) * c.head_dim;
    const std::size_t kv = static_cast<std::size_t>(c.n_head_kv) * c.head_dim;
    const std::size_t blas_scratch = gpu::Blas::available() ? n * widest_input(c) * 2 : 0;
    return n * (static_cast<std::size_t>(c.n_embd) + 2 * q + 2 * kv + 2 * static_cast<std::size_t>(c.n_ff)) *
               sizeof(float) +
           blas_scratch;
}

// The most any micro-batch size up to max_batch needs for split-key attention.
std::size_t attention_scratch(const ModelConfig& c, int n_ctx, int max_batch) {
    std::size_t most = 0;
    for (int n = 1; n <= max_batch; ++n)
        most = std::max(most, gpu::attention_scratch_bytes(n, c.n_head, c.head_dim, n_ctx));
    return most;
}

std::size_t kv_cache_bytes(const ModelConfig& c, int n_ctx, gpu::KvType type) {
    return 2 * static_cast<std::size_t>(c.n_layer) * n_ctx * c.n_head_kv * c.head_dim * gpu::kv_element_bytes(type);
}

std::string mib(std::size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

// Which streamed layers stay pinned in RAM (in order, while `ram_budget` lasts beside the staging
// buffers that disk reads need); the rest are read from disk. `layer_bytes`: each layer's slab.
std::optional<common::Error> plan_host(GpuPlan& plan, const std::vector<std::size_t>& layer_bytes, std::size_t largest,
                                       std::size_t ram_budget) {
    plan.pinned.assign(layer_bytes.size(), false);
    const std::size_t streamed_total = plan.streamed_bytes;
    const bool all_fit = ram_budget == 0 || streamed_total <= ram_budget;
    const std::size_t staging = all_fit ? 0 : 2 * largest;
    for (std::size_t i = 0; i < layer_bytes.size(); ++i) {
        if (plan.resident[i]) continue;
        const auto bytes = layer_bytes[i];
        if (all_fit || plan.pinned_bytes + bytes + staging <= ram_budget) {
            plan.pinned[i] = true;
            plan.pinned_bytes += bytes;
        } else {
            plan.disk_bytes += bytes;
        }
    }
    plan.pinned_bytes += staging;
    // Without a cache compressed layers are made at load; reading them from disk every pass would redo that.
    if (plan.disk_bytes > 0 && plan.compression != Compression::none && plan.cache.empty())
        return common::make_error("with compression the streamed layers must fit in the RAM budget (" +
                                  mib(ram_budget) + " for " + mib(streamed_total) +
                                  "): raise --ram-budget, run ollama-airllm prepare, or use compression none");
    return std::nullopt;
}

}  // namespace

common::Result<GpuPlan> plan_gpu(const ModelWeights& w, const ModelConfig& c, const GpuOptions& options) {
    const int n_ctx = options.n_ctx;
    const auto compression = options.compression;
    const auto vram_budget = options.vram_budget;
    GpuPlan plan;
    plan.max_batch = std::max(1, std::min(options.max_batch, n_ctx));
    plan.compression = compression;
    plan.kv_type = options.kv_type;
    plan.host_layers = options.host_layers;
    plan.threads = options.threads;
    if (compression != Compression::none) plan.cache = options.cache;
    const std::size_t kv = kv_cache_bytes(c, n_ctx, plan.kv_type);
    const std::size_t residual = static_cast<std::size_t>(n_ctx) * c.n_embd * sizeof(float);
    const std::size_t activations = activation_bytes(c, static_cast<std::size_t>(plan.max_batch));
    const std::size_t head = align_up(w.output->bytes) + align_up(w.output_norm->bytes);
    const std::size_t small =
        static_cast<std::size_t>(c.n_vocab) * sizeof(float) + n_ctx * sizeof(int) +
        static_cast<std::size_t>(c.head_dim) * sizeof(float) + attention_scratch(c, n_ctx, plan.max_batch) +
        (compression != Compression::none && gpu::Blas::available() ? largest_projection(c) * 2 : 0);
    plan.fixed_bytes = kv + residual + activations + head + small;

    std::vector<std::size_t> layer_bytes;
    std::size_t all_layers = 0, largest = 0;
    for (const auto& l : w.layers) {
        layer_bytes.push_back(layout_of(l, compression).bytes);
        all_layers += layer_bytes.back();
        largest = std::max(largest, layer_bytes.back());
    }
    if (vram_budget == 0 || plan.fixed_bytes + all_layers <= vram_budget) {
        plan.resident.assign(w.layers.size(), true);
        plan.pinned.assign(w.layers.size(), false);
        plan.resident_bytes = all_layers;
        return plan;
    }
    plan.ring_slots = 2;
    plan.fixed_bytes += plan.ring_slots * largest;
    if (plan.fixed_bytes > vram_budget)
        return common::make_error(
            "a VRAM budget of " + mib(vram_budget) + " cannot hold the KV cache (" + mib(kv) + " for a context of " +
            std::to_string(n_ctx) + "), activations (" + mib(activations + residual) + " for micro-batches of " +
            std::to_string(plan.max_batch) + "), the output head (" + mib(head) + ") and two streaming slots (" +
            mib(plan.ring_slots * largest) + "): lower the context or raise the budget");
    for (const auto bytes : layer_bytes) {
        const bool fits = plan.fixed_bytes + plan.resident_bytes + bytes <= vram_budget;
        plan.resident.push_back(fits);
        (fits ? plan.resident_bytes : plan.streamed_bytes) += bytes;
    }
    if (auto error = plan_host(plan, layer_bytes, largest, options.ram_budget)) return *error;
    return plan;
}

struct GpuTransformer::Impl {
    ModelWeights w;
    std::vector<LayerLayout> layouts;
    std::vector<gpu::DeviceBuffer> resident;  // [n_layer], empty for streamed layers
    std::vector<gpu::PinnedBuffer> pinned;    // [n_layer], empty for resident and disk layers
    std::vector<gpu::PinnedBuffer> staging;   // [ring_slots] when some layers come from disk
    std::vector<gpu::Event> staged;           // [ring_slots]: the copy out of the staging buffer is done
    std::vector<int> streamed;                // streamed layer indices, in order
    std::vector<gpu::DeviceBuffer> slots;     // [ring_slots]
    gpu::DeviceBuffer head, head_norm, device_inv_freq;
    gpu::DeviceBuffer k_cache, v_cache;            // [n_layer, n_ctx, n_head_kv * head_dim]
    gpu::DeviceBuffer x;                           // [n_ctx, n_embd]  residual stream of the whole forward pass
    gpu::DeviceBuffer xb, q, k, v, att, gate, up;  // one micro-batch
    gpu::DeviceBuffer logits, positions;
    gpu::DeviceBuffer attention_scratch;  // split-key partials for decode
    gpu::PinnedBuffer host_x, host_positions, host_logits;
    gpu::Stream compute, copy;
    std::vector<gpu::Event> copied, freed;  // [ring_slots]
    std::optional<gpu::Blas> blas;          // tensor-core products for micro-batches, where the build has a BLAS
    std::vector<float> logits_out;
    bool loaded = false;

    // Host layers (plan.host): views of their pinned slabs as the CPU kernels read them, their keys and
    // values in the GPU cache's type (a pinned copy of its rows for them, valid below host_kv_rows, so
    // that rows cross the link both ways as they are), and the streamed layers the GPU still takes.
    std::unique_ptr<cpu::ThreadPool> pool;
    std::vector<std::array<TensorView, 14>> host_views;  // [n_layer]
    std::vector<LayerWeights> host_weights;              // [n_layer]
    std::vector<int> host_index;                         // [n_layer]: row block in host_k/host_v, or -1
    gpu::PinnedBuffer host_k, host_v;                    // [n_host, n_ctx, n_head_kv * head_dim]
    int host_kv_rows = 0;
    LayerScratch host_scratch;
    std::vector<int> gpu_streamed;
    std::vector<float> inv_freq;

    const void* tensor(const std::byte* base, int layer, Slot s) const {
        const auto& layout = layouts[static_cast<std::size_t>(layer)];
        return layout.size[s] ? base + layout.offset[s] : nullptr;
    }
    gpu::WeightType type(int layer, Slot s) const { return layouts[static_cast<std::size_t>(layer)].type[s]; }
};

namespace {

// A layer from its files into `dst` as laid out (uncompressed: disk layers are), big tensors split
// over threads so that page-cache copies and disk reads run in parallel; then the pages are dropped.
void read_layer(std::byte* dst, const LayerWeights& l, const LayerLayout& layout) {
    const auto tensors = layer_tensors(l);
    const unsigned threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const TensorView* t = tensors[i];
        if (!t) continue;
        std::vector<std::thread> workers;
        for (unsigned k = 0; k < threads; ++k)
            workers.emplace_back([=] {
                const std::size_t begin = t->bytes * k / threads, end = t->bytes * (k + 1) / threads;
                std::memcpy(dst + layout.offset[i] + begin, t->data + begin, end - begin);
            });
        for (auto& w : workers) w.join();
    }
    dont_need(l);
}

}  // namespace

common::Result<std::unique_ptr<GpuTransformer>> GpuTransformer::create(const WeightSource& source, ModelWeights weights,
                                                                       int n_ctx, GpuPlan plan) {
    const ModelConfig& c = source.config();
    try {
        auto m = std::make_unique<Impl>();
        m->w = std::move(weights);
        const std::size_t e = static_cast<std::size_t>(c.n_embd), hd = static_cast<std::size_t>(c.head_dim);
        const std::size_t qw = c.n_head * hd, kvw = c.n_head_kv * hd, nb = static_cast<std::size_t>(plan.max_batch);

        for (std::size_t i = 0; i < m->w.layers.size(); ++i) {
            m->layouts.push_back(layout_of(m->w.layers[i], plan.compression));
            m->pinned.emplace_back();
            if (plan.resident[i]) {
                m->resident.emplace_back(m->layouts.back().bytes);
            } else {
                m->resident.emplace_back();
                m->streamed.push_back(static_cast<int>(i));
            }
        }
        std::size_t largest = 0;
        for (const auto& layout : m->layouts) largest = std::max(largest, layout.bytes);
        const bool from_disk = plan.disk_bytes > 0;
        for (int s = 0; s < plan.ring_slots; ++s) {
            m->slots.emplace_back(largest);
            m->copied.emplace_back();
            m->freed.emplace_back();
            if (from_disk) {
                m->staging.emplace_back(largest);
                m->staged.emplace_back();
            }
        }

        m->head = gpu::DeviceBuffer(m->w.output->bytes);
        m->head_norm = gpu::DeviceBuffer(m->w.output_norm->bytes);
        m->inv_freq = rope_inv_freq(c);
        m->device_inv_freq = gpu::DeviceBuffer(m->inv_freq.size() * sizeof(float));
        gpu::copy_to_device(m->device_inv_freq.data(), m->inv_freq.data(), m->inv_freq.size() * sizeof(float),
                            m->compute);

        const std::size_t cache_bytes = kv_cache_bytes(c, n_ctx, plan.kv_type) / 2;
        m->k_cache = gpu::DeviceBuffer(cache_bytes);
        m->v_cache = gpu::DeviceBuffer(cache_bytes);
        m->x = gpu::DeviceBuffer(static_cast<std::size_t>(n_ctx) * e * sizeof(float));
        m->xb = gpu::DeviceBuffer(nb * e * sizeof(float));
        m->q = gpu::DeviceBuffer(nb * qw * sizeof(float));
        m->att = gpu::DeviceBuffer(nb * qw * sizeof(float));
        m->k = gpu::DeviceBuffer(nb * kvw * sizeof(float));
        m->v = gpu::DeviceBuffer(nb * kvw * sizeof(float));
        m->gate = gpu::DeviceBuffer(nb * c.n_ff * sizeof(float));
        m->up = gpu::DeviceBuffer(nb * c.n_ff * sizeof(float));
        m->logits = gpu::DeviceBuffer(static_cast<std::size_t>(c.n_vocab) * sizeof(float));
        m->positions = gpu::DeviceBuffer(static_cast<std::size_t>(n_ctx) * sizeof(int));
        m->attention_scratch = gpu::DeviceBuffer(attention_scratch(c, n_ctx, plan.max_batch));
        m->host_x = gpu::PinnedBuffer(static_cast<std::size_t>(n_ctx) * e * sizeof(float));
        m->host_positions = gpu::PinnedBuffer(static_cast<std::size_t>(n_ctx) * sizeof(int));
        m->host_logits = gpu::PinnedBuffer(static_cast<std::size_t>(c.n_vocab) * sizeof(float));
        m->logits_out.resize(static_cast<std::size_t>(c.n_vocab));
        if (gpu::Blas::available())
            m->blas.emplace(m->compute, nb * widest_input(c),
                            plan.compression != Compression::none ? largest_projection(c) : 0);
        m->compute.synchronize();
        return std::unique_ptr<GpuTransformer>(new GpuTransformer(c, n_ctx, std::move(plan), std::move(m)));
    } catch (const gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    }
}

GpuTransformer::GpuTransformer(const ModelConfig& config, int n_ctx, GpuPlan plan, std::unique_ptr<Impl> impl)
    : config_(config), n_ctx_(n_ctx), plan_(std::move(plan)), impl_(std::move(impl)) {}

GpuTransformer::~GpuTransformer() = default;

common::Result<bool> GpuTransformer::load(const ProgressFn& progress) {
    auto& m = *impl_;
    try {
        std::size_t total = m.w.output->bytes + m.w.output_norm->bytes, done = 0;
        // A layer's slab from the cache (checked against its checksum), else made from the weights.
        const auto load_slab = [&](std::byte* dst, std::size_t layer) -> std::optional<common::Error> {
            if (!plan_.cache.empty())
                return read_cached_layer(plan_.cache, layer, m.layouts[layer], plan_.compression, dst, true);
            fill_slab(dst, m.w.layers[layer], m.layouts[layer], std::max(1u, std::thread::hardware_concurrency()));
            return std::nullopt;
        };
        for (const auto& layout : m.layouts) total += layout.bytes;
        const auto upload = [&](void* dst, const TensorView& t) {
            gpu::copy_to_device(dst, t.data, t.bytes, m.compute);
            done += t.bytes;
        };
        upload(m.head.data(), *m.w.output);
        upload(m.head_norm.data(), *m.w.output_norm);
        if (!progress(done, total)) return false;
        for (std::size_t i = 0; i < m.w.layers.size(); ++i) {
            const auto& l = m.w.layers[i];
            const auto& layout = m.layouts[i];
            if (plan_.resident[i]) {
                // Through a host slab: the tensors as the kernels read them (quantized or not).
                std::vector<std::byte> slab(layout.bytes);
                if (auto error = load_slab(slab.data(), i)) return *error;
                gpu::copy_to_device(m.resident[i].data(), slab.data(), layout.bytes, m.compute);
                m.compute.synchronize();
            } else if (!plan_.pinned[i]) {
                dont_need(l);  // read from the file on every pass: nothing to hold now
            } else {
                // A pinned copy crosses the link at full speed; the file's pages are then dropped so the
                // layer is held in RAM once.
                gpu::PinnedBuffer host(layout.bytes);
                if (auto error = load_slab(host.data(), i)) return *error;
                dont_need(l);
                m.pinned[i] = std::move(host);
            }
            done += layout.bytes;
            if (!progress(done, total)) return false;
        }
        m.compute.synchronize();
        choose_host_layers();
        m.loaded = true;
        return true;
    } catch (const gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    }
}

void GpuTransformer::choose_host_layers() {
    auto& m = *impl_;
    const auto& c = config_;
    const auto n_layer = static_cast<std::size_t>(c.n_layer);
    const std::size_t kvw = static_cast<std::size_t>(c.n_head_kv) * c.head_dim;
    plan_.host.assign(n_layer, false);
    m.gpu_streamed = m.streamed;
    // The host computes from the pinned slabs, so only uncompressed layers held in RAM qualify.
    std::vector<int> candidates;
    if (plan_.compression == Compression::none && plan_.host_layers != 0)
        for (const int layer : m.streamed)
            if (plan_.pinned[static_cast<std::size_t>(layer)]) candidates.push_back(layer);
    if (candidates.empty()) return;

    m.pool = std::make_unique<cpu::ThreadPool>(plan_.threads);
    m.host_views.resize(n_layer);
    m.host_weights.resize(n_layer);
    for (const int layer : candidates) {
        const auto li = static_cast<std::size_t>(layer);
        const auto tensors = layer_tensors(m.w.layers[li]);
        auto& views = m.host_views[li];
        std::array<const TensorView*, 14> in_slab{};
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            if (!tensors[i]) continue;
            views[i] = *tensors[i];
            views[i].data = m.pinned[li].data() + m.layouts[li].offset[i];
            views[i].file = nullptr;
            in_slab[i] = &views[i];
        }
        m.host_weights[li] =
            LayerWeights{in_slab[attn_norm], in_slab[wq],     in_slab[wk],   in_slab[wv],     in_slab[wo],
                         in_slab[bq],        in_slab[bk],     in_slab[bv],   in_slab[q_norm], in_slab[k_norm],
                         in_slab[ffn_norm],  in_slab[w_gate], in_slab[w_up], in_slab[w_down]};
    }
    m.host_scratch.reserve(c, gpu_host_max_tokens);

    std::size_t n_host = std::min(candidates.size(), static_cast<std::size_t>(std::max(plan_.host_layers, 0)));
    if (plan_.host_layers < 0) {
        // Time one layer both ways (best of a few): over the link into a ring slot, and computed on the
        // host for one token (into throwaway cache rows). Both finish together when
        // n_host * host_s == (candidates - n_host) * copy_s.
        const auto first = static_cast<std::size_t>(candidates.front());
        const std::size_t bytes = m.layouts[first].bytes;
        double copy_s = 1e9, host_s = 1e9;
        gpu::Event start(true), stop(true);
        for (int i = 0; i < 3; ++i) {
            start.record(m.copy);
            gpu::copy_to_device(m.slots[0].data(), m.pinned[first].data(), bytes, m.copy);
            stop.record(m.copy);
            stop.synchronize();
            copy_s = std::min(copy_s, stop.elapsed_ms_since(start) / 1e3);
        }
        std::vector<float> x(static_cast<std::size_t>(c.n_embd), 0.01f);
        std::vector<std::byte> k_row(kvw * gpu::kv_element_bytes(plan_.kv_type)), v_row(k_row.size());
        const KvRows rows{k_row.data(), v_row.data(), host_kv_type()};
        const int position = 0;
        for (int i = 0; i < 3; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            cpu_layer_forward(c, m.host_weights[first], x.data(), 1, &position, m.inv_freq.data(), rows, m.host_scratch,
                              *m.pool);
            host_s = std::min(host_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        stats_.copy_gbs = static_cast<double>(bytes) / copy_s / 1e9;
        stats_.host_gbs = static_cast<double>(bytes) / host_s / 1e9;
        n_host =
            static_cast<std::size_t>(std::lround(static_cast<double>(candidates.size()) * copy_s / (copy_s + host_s)));
    }
    if (n_host == 0) return;
    // Spread among the GPU's layers, so that the copy stream always has a layer to bring in while the
    // host computes.
    m.host_index.assign(n_layer, -1);
    for (std::size_t i = 0; i < n_host; ++i) {
        const auto layer = static_cast<std::size_t>(candidates[(2 * i + 1) * candidates.size() / (2 * n_host)]);
        plan_.host[layer] = true;
        m.host_index[layer] = static_cast<int>(i);
    }
    m.gpu_streamed.clear();
    for (const int layer : m.streamed)
        if (!plan_.host[static_cast<std::size_t>(layer)]) m.gpu_streamed.push_back(layer);
    const std::size_t mirror_bytes = n_host * n_ctx_ * kvw * gpu::kv_element_bytes(plan_.kv_type);
    m.host_k = gpu::PinnedBuffer(mirror_bytes);
    m.host_v = gpu::PinnedBuffer(mirror_bytes);
    m.host_kv_rows = 0;
}

DType GpuTransformer::host_kv_type() const { return plan_.kv_type == gpu::KvType::f16 ? DType::f16 : DType::f32; }

// A host layer's rows in its mirror and in the GPU cache: [n_ctx, n_head_kv * head_dim] each.
GpuTransformer::HostKv GpuTransformer::host_kv(int layer) const {
    auto& m = *impl_;
    const auto li = static_cast<std::size_t>(layer);
    const std::size_t block =
        static_cast<std::size_t>(n_ctx_) * config_.n_head_kv * config_.head_dim * gpu::kv_element_bytes(plan_.kv_type);
    const auto index = static_cast<std::size_t>(m.host_index[li]);
    return {{m.host_k.data() + index * block, m.host_v.data() + index * block, host_kv_type()},
            m.k_cache.as<std::byte>() + li * block,
            m.v_cache.as<std::byte>() + li * block};
}

void GpuTransformer::sync_host_kv(int n_past) {
    auto& m = *impl_;
    if (m.host_kv_rows >= n_past) return;
    const std::size_t row_bytes =
        static_cast<std::size_t>(config_.n_head_kv) * config_.head_dim * gpu::kv_element_bytes(plan_.kv_type);
    const std::size_t from = static_cast<std::size_t>(m.host_kv_rows) * row_bytes,
                      bytes = static_cast<std::size_t>(n_past - m.host_kv_rows) * row_bytes;
    for (int layer = 0; layer < config_.n_layer; ++layer) {
        if (!plan_.host[static_cast<std::size_t>(layer)]) continue;
        const auto kv = host_kv(layer);
        gpu::copy_to_host(kv.mirror.k + from, kv.k_cache + from, bytes, m.compute);
        gpu::copy_to_host(kv.mirror.v + from, kv.v_cache + from, bytes, m.compute);
    }
    m.compute.synchronize();
    m.host_kv_rows = n_past;
}

void GpuTransformer::forward_on_host(int layer, int n, int n_past) {
    auto& m = *impl_;
    const auto li = static_cast<std::size_t>(layer);
    const auto kv = host_kv(layer);
    cpu_layer_forward(config_, m.host_weights[li], reinterpret_cast<float*>(m.host_x.data()),
                      static_cast<std::size_t>(n), reinterpret_cast<const int*>(m.host_positions.data()),
                      m.inv_freq.data(), kv.mirror, m.host_scratch, *m.pool);
    // The new rows go to the GPU cache too, which stays whole for the next prompt; the pass ends with a
    // sync, so the mirror's rows are not rewritten while the copy reads them.
    const std::size_t row_bytes =
        static_cast<std::size_t>(config_.n_head_kv) * config_.head_dim * gpu::kv_element_bytes(plan_.kv_type);
    const std::size_t at = static_cast<std::size_t>(n_past) * row_bytes,
                      bytes = static_cast<std::size_t>(n) * row_bytes;
    gpu::copy_to_device(kv.k_cache + at, kv.mirror.k + at, bytes, m.compute);
    gpu::copy_to_device(kv.v_cache + at, kv.mirror.v + at, bytes, m.compute);
    stats_.host_bytes += m.layouts[li].bytes;
}

// One layer on the GPU for the pass's n tokens (residual stream in x), in micro-batches that share
// the layer's weights at `base`.
void GpuTransformer::forward_on_gpu(int layer, const std::byte* base, int n) {
    auto& m = *impl_;
    const auto& c = config_;
    const auto& s = m.compute;
    const gpu::Blas* blas = m.blas ? &*m.blas : nullptr;
    const int e = c.n_embd, hd = c.head_dim, qw = c.n_head * hd, kvw = c.n_head_kv * hd;
    const auto at = [&](Slot slot) { return m.tensor(base, layer, slot); };
    const auto type = [&](Slot slot) { return m.type(layer, slot); };
    // this layer's cache rows
    const std::size_t layer_bytes =
        static_cast<std::size_t>(layer) * n_ctx_ * kvw * gpu::kv_element_bytes(plan_.kv_type);
    std::byte* k_cache = m.k_cache.as<std::byte>() + layer_bytes;
    std::byte* v_cache = m.v_cache.as<std::byte>() + layer_bytes;
    for (int c0 = 0; c0 < n; c0 += plan_.max_batch) {
        const int mb = std::min(plan_.max_batch, n - c0);
        float* x = m.x.as<float>() + static_cast<std::size_t>(c0) * e;
        const int* pos = m.positions.as<int>() + c0;
        // attention rmsnorm and q/k/v projections (Qwen2 biases), per-head q/k norm (Qwen3), RoPE, and
        // the keys and values into the cache at their positions
        const gpu::Product qkv[] = {{m.q.as<float>(), at(wq), type(wq), qw, at(bq), type(bq)},
                                    {m.k.as<float>(), at(wk), type(wk), kvw, at(bk), type(bk)},
                                    {m.v.as<float>(), at(wv), type(wv), kvw, at(bv), type(bv)}};
        gpu::norm_matmul(qkv, x, {at(attn_norm), type(attn_norm), c.rms_eps}, m.xb.as<float>(), mb, e, s, blas);
        if (at(q_norm)) {
            gpu::rmsnorm(m.q.as<float>(), m.q.as<float>(), at(q_norm), type(q_norm), mb * c.n_head, hd, c.rms_eps, s);
            gpu::rmsnorm(m.k.as<float>(), m.k.as<float>(), at(k_norm), type(k_norm), mb * c.n_head_kv, hd, c.rms_eps,
                         s);
        }
        gpu::rope_store_kv(m.q.as<float>(), m.k.as<float>(), m.v.as<float>(), k_cache, v_cache, plan_.kv_type, mb,
                           c.n_head, c.n_head_kv, hd, m.device_inv_freq.as<float>(), pos, s);
        // grouped-query attention, output projection into the residual
        gpu::attention(m.att.as<float>(), m.q.as<float>(), k_cache, v_cache, plan_.kv_type, mb, pos, c.n_head,
                       c.n_head_kv, hd, n_ctx_, m.attention_scratch.as<float>(), s);
        gpu::matmul_add(x, m.att.as<float>(), at(wo), type(wo), mb, qw, e, s, blas);
        // ffn rmsnorm, SwiGLU: down(silu(gate(x)) * up(x)) into the residual
        gpu::norm_matmul_swiglu(m.gate.as<float>(), m.up.as<float>(), m.xb.as<float>(), x,
                                {at(ffn_norm), type(ffn_norm), c.rms_eps}, at(w_gate), at(w_up), type(w_gate), mb, e,
                                c.n_ff, s, blas);
        gpu::matmul_add(x, m.gate.as<float>(), at(w_down), type(w_down), mb, c.n_ff, e, s, blas);
    }
}

common::Result<std::span<const float>> GpuTransformer::forward(std::span<const std::int32_t> tokens, int n_past) {
    if (auto error = check_forward(config_, n_ctx_, tokens, n_past)) return *error;
    auto& m = *impl_;
    if (!m.loaded) return common::make_error("the model's weights are not loaded yet");
    const auto& c = config_;
    const int n = static_cast<int>(tokens.size());
    const int e = c.n_embd;
    const auto& s = m.compute;
    const gpu::Blas* blas = m.blas ? &*m.blas : nullptr;
    try {
        // Embedding rows are looked up on the host (the table stays out of VRAM), then uploaded.
        const auto& table = *m.w.token_embd;
        const std::size_t row_bytes = static_cast<std::size_t>(e) * dtype_size(table.dtype);
        auto* host_x = reinterpret_cast<float*>(m.host_x.data());
        auto* host_pos = reinterpret_cast<int*>(m.host_positions.data());
        for (int t = 0; t < n; ++t) {
            cpu::convert_row(table.dtype,
                             table.data + static_cast<std::size_t>(tokens[static_cast<std::size_t>(t)]) * row_bytes,
                             host_x + static_cast<std::size_t>(t) * e, static_cast<std::size_t>(e));
            host_pos[t] = n_past + t;
        }
        gpu::copy_to_device(m.x.data(), host_x, static_cast<std::size_t>(n) * e * sizeof(float), s);
        gpu::copy_to_device(m.positions.data(), host_pos, static_cast<std::size_t>(n) * sizeof(int), s);

        // Decoding leaves the host layers to the CPU; their cached rows are brought up to date first.
        const bool host_pass = !m.host_index.empty() && n <= gpu_host_max_tokens;
        m.host_kv_rows = std::min(m.host_kv_rows, n_past);  // rows from n_past on are rewritten now
        if (host_pass) sync_host_kv(n_past);
        const auto& order = host_pass ? m.gpu_streamed : m.streamed;

        // The ring: streamed layer i goes to slot i % R once the layer that used that slot is done.
        const int ring = plan_.ring_slots;
        const int n_streamed = static_cast<int>(order.size());
        const auto issue_copy = [&](int i) {
            const auto slot = static_cast<std::size_t>(i % ring);
            const auto layer = static_cast<std::size_t>(order[static_cast<std::size_t>(i)]);
            const std::byte* from = m.pinned[layer].data();
            if (!plan_.pinned[layer]) {
                // From disk: the host reads the layer into this slot's staging buffer (its last copy out
                // is long done) while the GPU works on earlier layers, then drops the file's pages.
                m.staged[slot].synchronize();
                if (plan_.cache.empty())
                    read_layer(m.staging[slot].data(), m.w.layers[layer], m.layouts[layer]);
                else if (auto error = read_cached_layer(plan_.cache, layer, m.layouts[layer], plan_.compression,
                                                        m.staging[slot].data(), false))
                    throw std::runtime_error(error->message);
                if (i + 1 < n_streamed)
                    will_need(m.w.layers[static_cast<std::size_t>(order[static_cast<std::size_t>(i + 1)])]);
                from = m.staging[slot].data();
            }
            if (i >= ring) m.freed[slot].wait_in(m.copy);
            gpu::copy_to_device(m.slots[slot].data(), from, m.layouts[layer].bytes, m.copy);
            m.copied[slot].record(m.copy);
            if (!plan_.pinned[layer]) m.staged[slot].record(m.copy);
            stats_.bytes_copied += m.layouts[layer].bytes;
        };
        for (int i = 0; i < std::min(ring, n_streamed); ++i) issue_copy(i);

        int next_streamed = 0;
        bool x_on_host = false;  // the residual stream is in host_x, not in x
        const std::size_t x_bytes = static_cast<std::size_t>(n) * e * sizeof(float);
        for (int layer = 0; layer < c.n_layer; ++layer) {
            const auto li = static_cast<std::size_t>(layer);
            if (host_pass && plan_.host[li]) {
                if (!x_on_host) {
                    gpu::copy_to_host(host_x, m.x.data(), x_bytes, s);
                    s.synchronize();
                    x_on_host = true;
                }
                forward_on_host(layer, n, n_past);
                continue;
            }
            if (x_on_host) {
                gpu::copy_to_device(m.x.data(), host_x, x_bytes, s);
                x_on_host = false;
            }
            const std::byte* base;
            int slot = -1;
            if (plan_.resident[li]) {
                base = m.resident[li].as<std::byte>();
            } else {
                slot = next_streamed % ring;
                m.copied[static_cast<std::size_t>(slot)].wait_in(s);
                base = m.slots[static_cast<std::size_t>(slot)].as<std::byte>();
            }
            forward_on_gpu(layer, base, n);
            if (slot >= 0) {
                m.freed[static_cast<std::size_t>(slot)].record(s);
                if (next_streamed + ring < n_streamed) issue_copy(next_streamed + ring);
                ++next_streamed;
            }
        }

        if (x_on_host) gpu::copy_to_device(m.x.data(), host_x, x_bytes, s);
        if (host_pass) m.host_kv_rows = n_past + n;
        // final rmsnorm of the last token, then the classifier
        const float* last = m.x.as<float>() + static_cast<std::size_t>(n - 1) * e;
        const gpu::Product head[] = {{m.logits.as<float>(), m.head.data(), stored_type(m.w.output->dtype), c.n_vocab}};
        gpu::norm_matmul(head, last, {m.head_norm.data(), stored_type(m.w.output_norm->dtype), c.rms_eps},
                         m.xb.as<float>(), 1, e, s, blas);
        gpu::copy_to_host(m.host_logits.data(), m.logits.data(), m.logits_out.size() * sizeof(float), s);
        s.synchronize();
        std::memcpy(m.logits_out.data(), m.host_logits.data(), m.logits_out.size() * sizeof(float));
        ++stats_.passes;
        return std::span<const float>(m.logits_out);
    } catch (const gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    } catch (const std::runtime_error& err) {
        return common::make_error(err.what());
    }
}

}  // namespace runner
