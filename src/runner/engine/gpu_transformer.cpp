#include "runner/engine/gpu_transformer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <thread>

#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/engine/transformer.h"
#include "runner/offload/layer_cache.h"

namespace runner {

namespace {

using namespace layer_slot;

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

// A ring slot holds any streamed layer in either layout.
std::size_t slot_capacity(std::size_t largest) { return slab_aligned(largest + split_extra_bytes); }

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
    plan.host_share = options.host_share;
    plan.threads = options.threads;
    if (compression != Compression::none) plan.cache = options.cache;
    const std::size_t kv = kv_cache_bytes(c, n_ctx, plan.kv_type);
    const std::size_t residual = static_cast<std::size_t>(n_ctx) * c.n_embd * sizeof(float);
    const std::size_t activations = activation_bytes(c, static_cast<std::size_t>(plan.max_batch));
    const std::size_t head = slab_aligned(w.output->bytes) + slab_aligned(w.output_norm->bytes);
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
    plan.fixed_bytes += plan.ring_slots * slot_capacity(largest);
    if (plan.fixed_bytes > vram_budget)
        return common::make_error(
            "a VRAM budget of " + mib(vram_budget) + " cannot hold the KV cache (" + mib(kv) + " for a context of " +
            std::to_string(n_ctx) + "), activations (" + mib(activations + residual) + " for micro-batches of " +
            std::to_string(plan.max_batch) + "), the output head (" + mib(head) + ") and two streaming slots (" +
            mib(plan.ring_slots * slot_capacity(largest)) + "): lower the context or raise the budget");
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
    std::vector<LayerLayout> layouts;         // [n_layer]; a split layer's is its split.layout
    std::vector<SplitLayout> split;           // [n_layer], for the layers plan.split marks
    std::vector<gpu::DeviceBuffer> resident;  // [n_layer], empty for streamed layers
    std::vector<gpu::PinnedBuffer> pinned;    // [n_layer], empty for resident and disk layers
    std::vector<gpu::PinnedBuffer> staging;   // [ring_slots] when some layers come from disk
    std::vector<gpu::Event> staged;           // [ring_slots]: the copy out of the staging buffer is done
    std::vector<int> streamed;                // streamed layer indices, in order
    gpu::DeviceBuffer ring;                   // ring_slots * slot_bytes; decode steps may cut it finer
    std::size_t slot_bytes = 0;
    std::size_t decode_slot_bytes = 0;  // what one split layer's GPU part takes in the ring (0: no split)
    int ring_head = 0;                  // the slot of this step's first streamed layer
    int prefetched = 0;                 // the next decode step's first streamed layers already on their way
    gpu::DeviceBuffer head, head_norm, device_inv_freq;
    gpu::DeviceBuffer k_cache, v_cache;            // [n_layer, n_ctx, n_head_kv * head_dim]
    gpu::DeviceBuffer x;                           // [n_ctx, n_embd]  residual stream of the whole forward pass
    gpu::DeviceBuffer xb, q, k, v, att, gate, up;  // one micro-batch
    gpu::DeviceBuffer logits, positions;
    gpu::DeviceBuffer attention_scratch;  // split-key partials for decode
    gpu::PinnedBuffer host_x, host_positions, host_logits;
    gpu::Stream compute, copy;
    std::vector<gpu::Event> copied, freed;  // [the most slots the ring is cut into]
    std::optional<gpu::Blas> blas;          // tensor-core products for micro-batches, where the build has a BLAS
    std::vector<float> logits_out;
    bool loaded = false;

    // The host's rows of split layers: the threads, the rows' views into the pinned slabs, the MLP's input
    // as the GPU leaves it (x_ready: copied into host_x), and the host's sum, which the GPU adds in place.
    std::unique_ptr<cpu::ThreadPool> pool;
    struct HostMlp {
        TensorView norm;
        cpu::Matrix gate, up, down;
    };
    std::vector<HostMlp> host_mlp;  // [n_layer], for split layers
    std::vector<float> host_xb, host_gate;
    gpu::PinnedBuffer host_partial;  // [gpu_host_max_tokens, n_embd], read by the GPU's add in place
    gpu::Event x_ready;

    std::byte* slot(int index, std::size_t bytes) {
        return ring.as<std::byte>() + static_cast<std::size_t>(index) * bytes;
    }
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

// A matrix of `rows` x `cols` in a slab, stored as `type` (quantized, or the layer's `dtype`), for the CPU kernels.
cpu::Matrix slab_matrix(const std::byte* at, gpu::WeightType type, DType dtype, std::size_t rows, std::size_t cols) {
    if (gpu::is_quantized(type)) return {at, type, rows, cols};
    TensorView t;
    t.dtype = dtype;
    t.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
    t.data = at;
    t.bytes = rows * cols * dtype_size(dtype);
    return t;
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
        m->slot_bytes = slot_capacity(largest);
        if (plan.ring_slots > 0) m->ring = gpu::DeviceBuffer(plan.ring_slots * m->slot_bytes);
        for (int s = 0; s < plan.ring_slots; ++s) {
            m->copied.emplace_back();
            m->freed.emplace_back();
            if (from_disk) {
                m->staging.emplace_back(largest);
                m->staged.emplace_back();
            }
        }

        m->head = gpu::DeviceBuffer(m->w.output->bytes);
        m->head_norm = gpu::DeviceBuffer(m->w.output_norm->bytes);
        const auto inv_freq = rope_inv_freq(c);
        m->device_inv_freq = gpu::DeviceBuffer(inv_freq.size() * sizeof(float));
        gpu::copy_to_device(m->device_inv_freq.data(), inv_freq.data(), inv_freq.size() * sizeof(float), m->compute);

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

GpuTransformer::~GpuTransformer() {
    // A decode step returns with the next step's first layers still being copied into the ring.
    if (impl_) settle();
}

common::Result<bool> GpuTransformer::load(const ProgressFn& progress) {
    auto& m = *impl_;
    try {
        std::size_t total = m.w.output->bytes + m.w.output_norm->bytes, done = 0;
        // A split layer's slab: uncompressed from its tensors, compressed re-laid from its whole slab.
        std::vector<std::byte> whole;
        const auto load_slab = [&](std::byte* dst, std::size_t layer) -> std::optional<common::Error> {
            if (!plan_.split[layer]) return whole_slab(dst, layer, m.layouts[layer]);
            const LayerWeights& l = m.w.layers[layer];
            if (plan_.compression != Compression::none) {
                const auto layout = layout_of(l, plan_.compression);
                whole.resize(layout.bytes);
                if (auto error = whole_slab(whole.data(), layer, layout)) return error;
            }
            fill_split_slab(dst, l, m.split[layer], whole.data());
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
        if (auto error = choose_split()) return *error;
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
                if (plan_.split[i]) {
                    const auto& split = m.split[i];
                    const std::byte* base = m.pinned[i].data();
                    const auto e = static_cast<std::size_t>(l.w_down->shape[0]),
                               h = static_cast<std::size_t>(split.host_rows);
                    const auto matrix = [&](std::size_t offset, std::size_t rows, std::size_t cols) {
                        return slab_matrix(base + offset, layout.type[w_gate], l.w_down->dtype, rows, cols);
                    };
                    m.host_mlp[i] = {*l.ffn_norm, matrix(split.host_gate, h, e), matrix(split.host_up, h, e),
                                     matrix(split.host_down, e, h)};
                    m.host_mlp[i].norm.data = base + layout.offset[ffn_norm];
                    m.host_mlp[i].norm.file = nullptr;
                }
            }
            done += layout.bytes;
            if (!progress(done, total)) return false;
        }
        m.compute.synchronize();
        m.loaded = true;
        return true;
    } catch (const gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    }
}

// A layer's slab as `layout` (layout_of's) lays it out: from the cache, checked against its checksum, else
// made from the weights.
std::optional<common::Error> GpuTransformer::whole_slab(std::byte* dst, std::size_t layer, const LayerLayout& layout) {
    if (!plan_.cache.empty()) return read_cached_layer(plan_.cache, layer, layout, plan_.compression, dst, true);
    fill_slab(dst, impl_->w.layers[layer], layout, std::max(1u, std::thread::hardware_concurrency()));
    return std::nullopt;
}

// The link's and the host's rates for choose_split, in bytes per second, timed at once as a decode step runs them: the
// DMA and the cores share the memory bus, and each alone runs faster than beside the other (on a 16-core H200 host the
// host's MLP read up to 137 GB/s alone and 69-83 GB/s while copies ran, the copies 55 and 49-54), so rates measured
// apart would give the host too many rows. The link: 64 MiB pinned copies into a ring slot (the rate, not the layer, is
// wanted), back to back for at least two of the host's rounds. The host: an MLP for one token, round after round while
// the copies run; a round that ends after them counts only when it is the first. The rounds take the first candidates'
// MLPs in turn, at least three and 1 GiB of them, so that a round rarely finds its layer still in the last-level cache
// (one 8B-shape MLP is 352 MB uncompressed, 99 MB in 4bit; that host's cache 300 MiB): uncompressed from their files'
// pages (a first round of each, alone, brings them in; loading reads them next anyway), compressed from their slabs
// as loading makes or reads them. Of three such windows the one where the two together moved the most counts, so that a
// busy moment does not decide the split for the whole session.
common::Result<GpuTransformer::SplitRates> GpuTransformer::time_split(const std::vector<int>& candidates) {
    auto& m = *impl_;
    const std::size_t e = static_cast<std::size_t>(config_.n_embd), n_ff = static_cast<std::size_t>(config_.n_ff);
    struct Mlp {
        std::vector<std::byte> slab;  // compressed: the layer's, as loading makes it
        cpu::Matrix gate, up, down;
        std::size_t bytes() const { return gate.bytes() + up.bytes() + down.bytes(); }
    };
    std::vector<Mlp> timed;
    timed.reserve(candidates.size());  // the views point into the buffers: no element moves
    for (std::size_t bytes = 0;
         timed.size() < candidates.size() && (timed.size() < 3 || bytes < (std::size_t{1} << 30));
         bytes += timed.back().bytes()) {
        const auto layer = static_cast<std::size_t>(candidates[timed.size()]);
        const LayerWeights& l = m.w.layers[layer];
        Mlp& mlp = timed.emplace_back();
        if (plan_.compression == Compression::none) {
            mlp.gate = *l.w_gate;
            mlp.up = *l.w_up;
            mlp.down = *l.w_down;
            continue;
        }
        const auto layout = layout_of(l, plan_.compression);
        mlp.slab.resize(layout.bytes);
        if (auto error = whole_slab(mlp.slab.data(), layer, layout)) return *error;
        const auto matrix = [&](Slot s, std::size_t rows, std::size_t cols) {
            return slab_matrix(mlp.slab.data() + layout.offset[s], layout.type[s], l.w_down->dtype, rows, cols);
        };
        mlp.gate = matrix(w_gate, n_ff, e);
        mlp.up = matrix(w_up, n_ff, e);
        mlp.down = matrix(w_down, e, n_ff);
    }
    const std::size_t layer_bytes =
        layout_of(m.w.layers[static_cast<std::size_t>(candidates.front())], plan_.compression).bytes;
    const std::size_t probe_bytes = std::min<std::size_t>(layer_bytes, std::size_t{64} << 20);
    const gpu::PinnedBuffer probe(probe_bytes);
    std::vector<float> x(e, 0.01f), g(n_ff), y(e);
    std::size_t round = 0;
    const auto host_round = [&] {
        const Mlp& mlp = timed[round++ % timed.size()];
        const auto t0 = std::chrono::steady_clock::now();
        cpu::swiglu_matmul(g.data(), mlp.gate, mlp.up, x.data(), 1, *m.pool);
        cpu::matmul(y.data(), g.data(), mlp.down, nullptr, 1, *m.pool);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    for (std::size_t i = 0; i < timed.size(); ++i) host_round();  // may read from the disk: not a rate
    const double round_alone = std::min(host_round(), host_round());
    gpu::Event start(true), stop(true);
    const auto copy_window = [&](int copies) {
        start.record(m.copy);
        for (int i = 0; i < copies; ++i)
            gpu::copy_to_device(m.slot(0, m.slot_bytes), probe.data(), probe_bytes, m.copy);
        stop.record(m.copy);
    };
    copy_window(1);
    stop.synchronize();
    const double copy_alone = std::max(1e-6, stop.elapsed_ms_since(start) / 1e3);  // events tick in µs
    const int copies = static_cast<int>(std::clamp(std::ceil(2 * round_alone / copy_alone), 16.0, 1024.0));
    double copy_rate = 0, host_rate = 0;
    for (int window = 0; window < 3; ++window) {
        copy_window(copies);
        double host_s = 1e9;
        for (bool first_round = true;; first_round = false) {
            const double seconds = host_round();
            const bool copying = !stop.done();
            if (first_round || copying) host_s = std::min(host_s, seconds);
            if (!copying) break;
        }
        stop.synchronize();
        const double copied = static_cast<double>(probe_bytes) * copies / (stop.elapsed_ms_since(start) / 1e3);
        const double computed = static_cast<double>(timed.front().bytes()) / host_s;
        if (copied + computed > copy_rate + host_rate) {
            copy_rate = copied;
            host_rate = computed;
        }
    }
    return SplitRates{copy_rate, host_rate};
}

// Which streamed layers decode split between the GPU and the host, and how many MLP rows the host
// takes: before the slabs are laid out, since a split layer's slab puts the host's rows last.
std::optional<common::Error> GpuTransformer::choose_split() {
    auto& m = *impl_;
    const auto& c = config_;
    const auto n_layer = static_cast<std::size_t>(c.n_layer);
    plan_.split.assign(n_layer, false);
    m.split.resize(n_layer);
    m.host_mlp.resize(n_layer);
    // The host computes from the pinned slabs, so only layers held in RAM qualify.
    std::vector<int> candidates;
    if (plan_.host_share != 0)
        for (const int layer : m.streamed)
            if (plan_.pinned[static_cast<std::size_t>(layer)] &&
                splittable(m.w.layers[static_cast<std::size_t>(layer)], plan_.compression))
                candidates.push_back(layer);
    if (candidates.empty()) return std::nullopt;

    m.pool = std::make_unique<cpu::ThreadPool>(plan_.threads);
    const auto layout = layout_of(m.w.layers[static_cast<std::size_t>(candidates.front())], plan_.compression);
    const std::size_t e = static_cast<std::size_t>(c.n_embd), n_ff = static_cast<std::size_t>(c.n_ff);
    // a row of gate and up and a column of down, in the slab's format
    const double row_bytes =
        static_cast<double>(layout.size[w_gate] + layout.size[w_up] + layout.size[w_down]) / static_cast<double>(n_ff);
    double host_rows = static_cast<double>(n_ff) * std::min(plan_.host_share, 100) / 100.0;
    if (plan_.host_share < 0) {
        // The GPU's part (everything but the host's rows) and the host's rows take equal time when
        //   (layer_bytes - host_rows * row_bytes) / copy_rate == host_rows * row_bytes / host_rate.
        const auto rates = time_split(candidates);
        if (!rates.ok()) return rates.error();
        const auto [copy_rate, host_rate] = *rates;
        stats_.copy_gbs = copy_rate / 1e9;
        stats_.host_gbs = host_rate / 1e9;
        host_rows = static_cast<double>(layout.bytes) / row_bytes * host_rate / (host_rate + copy_rate);
    }
    const double granule = split_granule(plan_.compression);
    const double gpu_rows = static_cast<double>(n_ff) - host_rows;
    const int rows = c.n_ff - static_cast<int>(std::clamp<double>(std::round(gpu_rows / granule) * granule, 0,
                                                                  static_cast<double>(n_ff)));
    plan_.host_rows = rows;
    if (rows == 0) return std::nullopt;
    for (const int layer : candidates) {
        const auto li = static_cast<std::size_t>(layer);
        plan_.split[li] = true;
        m.split[li] = split_layout(m.w.layers[li], plan_.compression, c.n_ff - rows);
        m.layouts[li] = m.split[li].layout;
        m.decode_slot_bytes = std::max(m.decode_slot_bytes, slab_aligned(m.split[li].gpu_bytes));
    }
    // Decode steps cut the ring into slots of the GPU's parts, so the copies run further ahead; not when
    // disk layers (whole, through their staging buffers) stream too.
    if (plan_.disk_bytes > 0 || candidates.size() < m.streamed.size()) m.decode_slot_bytes = m.slot_bytes;
    const std::size_t most_slots = plan_.ring_slots * m.slot_bytes / m.decode_slot_bytes;
    m.copied.resize(std::max(m.copied.size(), most_slots));
    m.freed.resize(m.copied.size());
    m.host_xb.resize(gpu_host_max_tokens * e);
    m.host_gate.resize(gpu_host_max_tokens * static_cast<std::size_t>(rows));
    m.host_partial = gpu::PinnedBuffer(gpu_host_max_tokens * e * sizeof(float));
    return std::nullopt;
}

// One layer on the GPU for the pass's n tokens (residual stream in x), in micro-batches that share
// the layer's weights at `base`. With host_mlp (a split layer's decode step) the MLP's input goes to
// the host (x_ready) and the GPU computes only its own rows; otherwise it computes them all.
void GpuTransformer::forward_on_gpu(int layer, const std::byte* base, int n, bool host_mlp) {
    auto& m = *impl_;
    const auto& c = config_;
    const auto& s = m.compute;
    const auto li = static_cast<std::size_t>(layer);
    const gpu::Blas* blas = m.blas ? &*m.blas : nullptr;
    const int e = c.n_embd, hd = c.head_dim, qw = c.n_head * hd, kvw = c.n_head_kv * hd;
    const auto at = [&](Slot slot) { return m.tensor(base, layer, slot); };
    const auto type = [&](Slot slot) { return m.type(layer, slot); };
    // The MLP's blocks of rows: all of it, or a split layer's GPU rows and then (unless the host takes
    // them) its host rows: gate and up rows, down columns, and how many.
    struct Block {
        const void *gate, *up, *down;
        int rows;
    };
    std::vector<Block> blocks;
    if (!plan_.split.empty() && plan_.split[li]) {
        const auto& split = m.split[li];
        if (split.gpu_rows > 0) blocks.push_back({at(w_gate), at(w_up), at(w_down), split.gpu_rows});
        if (!host_mlp)
            blocks.push_back({base + split.host_gate, base + split.host_up, base + split.host_down, split.host_rows});
    } else {
        blocks.push_back({at(w_gate), at(w_up), at(w_down), c.n_ff});
    }
    // this layer's cache rows
    const std::size_t layer_bytes = li * n_ctx_ * kvw * gpu::kv_element_bytes(plan_.kv_type);
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
        if (host_mlp) {
            auto* to = m.host_x.data() + static_cast<std::size_t>(c0) * e * sizeof(float);
            gpu::copy_to_host(to, x, static_cast<std::size_t>(mb) * e * sizeof(float), s);
            m.x_ready.record(s);  // the last micro-batch's: the stream has copied the earlier ones by then
        }
        // ffn rmsnorm, SwiGLU: down(silu(gate(x)) * up(x)) into the residual, block by block; every
        // block's activations first, since each reads the residual before any down product adds to it
        const gpu::Norm norm{at(ffn_norm), type(ffn_norm), c.rms_eps};
        std::size_t offset = 0;
        for (const auto& b : blocks) {
            gpu::norm_matmul_swiglu(m.gate.as<float>() + offset, m.up.as<float>() + offset, m.xb.as<float>(), x, norm,
                                    b.gate, b.up, type(w_gate), mb, e, b.rows, s, blas);
            offset += static_cast<std::size_t>(mb) * b.rows;
        }
        offset = 0;
        for (const auto& b : blocks) {
            gpu::matmul_add(x, m.gate.as<float>() + offset, b.down, type(w_down), mb, b.rows, e, s, blas);
            offset += static_cast<std::size_t>(mb) * b.rows;
        }
    }
}

// A split layer's host rows for the n tokens of a decode step: their share of the MLP from the input
// the GPU copied out, added into the residual on the GPU.
void GpuTransformer::mlp_on_host(int layer, int n) {
    auto& m = *impl_;
    const auto& c = config_;
    const auto& mlp = m.host_mlp[static_cast<std::size_t>(layer)];
    const auto tokens = static_cast<std::size_t>(n), e = static_cast<std::size_t>(c.n_embd);
    auto* partial = reinterpret_cast<float*>(m.host_partial.data());
    const auto t0 = std::chrono::steady_clock::now();
    m.x_ready.synchronize();
    const auto t1 = std::chrono::steady_clock::now();
    cpu::rmsnorm(m.host_xb.data(), reinterpret_cast<const float*>(m.host_x.data()), mlp.norm, tokens, e, c.rms_eps);
    cpu::swiglu_matmul(m.host_gate.data(), mlp.gate, mlp.up, m.host_xb.data(), tokens, *m.pool);
    cpu::matmul(partial, m.host_gate.data(), mlp.down, nullptr, tokens, *m.pool);
    stats_.host_wait_s += std::chrono::duration<double>(t1 - t0).count();
    stats_.host_mlp_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    gpu::add(m.x.as<float>(), partial, tokens * e, m.compute);
    stats_.host_bytes += mlp.gate.bytes() + mlp.up.bytes() + mlp.down.bytes();
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

        // Decoding splits the split layers with the host, and only their GPU parts cross the link, into
        // a ring cut into slots of that size.
        const bool decode = n <= gpu_host_max_tokens;
        const bool split_pass = m.decode_slot_bytes > 0 && decode;
        const std::size_t slot_bytes = split_pass ? m.decode_slot_bytes : m.slot_bytes;
        const int ring = plan_.ring_slots > 0 ? static_cast<int>(plan_.ring_slots * m.slot_bytes / slot_bytes) : 0;
        const auto& order = m.streamed;
        const auto split_here = [&](std::size_t layer) { return split_pass && plan_.split[layer]; };
        // A decode step's last layers free their slots while the link would otherwise idle until the next
        // step: they take the next step's first layers then (layers from disk excepted, which the host
        // reads synchronously). The next step uses them if it is a decode step too (every decode step cuts
        // the ring alike); otherwise the ring starts over, which is safe because the copy stream runs its
        // copies in order.
        const bool prefetch = decode && plan_.disk_bytes == 0;
        if (!decode || m.prefetched == 0) {
            m.prefetched = 0;
            m.ring_head = 0;
        }

        // The ring: streamed layer i goes to slot (ring_head + i) % ring once the layer that used that slot
        // (in this step or, for prefetched ones, the last) is done.
        const int n_streamed = static_cast<int>(order.size());
        const auto slot_of = [&](int i) { return (m.ring_head + i) % ring; };
        const auto issue_copy = [&](int i, bool after_use) {
            const auto slot = static_cast<std::size_t>(slot_of(i));
            const auto layer = static_cast<std::size_t>(order[static_cast<std::size_t>(i % n_streamed)]);
            const std::size_t bytes = split_here(layer) ? m.split[layer].gpu_bytes : m.layouts[layer].bytes;
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
            if (after_use) m.freed[slot].wait_in(m.copy);
            gpu::copy_to_device(m.slot(static_cast<int>(slot), slot_bytes), from, bytes, m.copy);
            m.copied[slot].record(m.copy);
            if (!plan_.pinned[layer]) m.staged[slot].record(m.copy);
        };
        for (int i = m.prefetched; i < std::min(ring, n_streamed); ++i) issue_copy(i, false);
        int prefetched = 0;

        int next_streamed = 0;
        for (int layer = 0; layer < c.n_layer; ++layer) {
            const auto li = static_cast<std::size_t>(layer);
            const std::byte* base;
            int slot = -1;
            if (plan_.resident[li]) {
                base = m.resident[li].as<std::byte>();
            } else {
                slot = slot_of(next_streamed);
                m.copied[static_cast<std::size_t>(slot)].wait_in(s);
                base = m.slot(slot, slot_bytes);
                stats_.bytes_copied += split_here(li) ? m.split[li].gpu_bytes : m.layouts[li].bytes;
            }
            forward_on_gpu(layer, base, n, split_here(li));
            if (slot >= 0) {
                // The slot is free once the GPU's part is done: the host's rows are in pinned RAM.
                m.freed[static_cast<std::size_t>(slot)].record(s);
                const int next = next_streamed + ring;
                if (next < n_streamed) {
                    issue_copy(next, true);
                } else if (prefetch && next - n_streamed == prefetched) {
                    // The next step's streamed layer `prefetched`, into the same slot. A ring longer than the
                    // streamed layers (a few small ones) never starts the next step's layers in order: none then.
                    issue_copy(next, true);
                    ++prefetched;
                }
                ++next_streamed;
            }
            if (split_here(li)) mlp_on_host(layer, n);
        }
        if (ring > 0) m.ring_head = slot_of(n_streamed);
        m.prefetched = prefetched;

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
        settle();
        return common::make_error(std::string("GPU: ") + err.what());
    } catch (const std::runtime_error& err) {
        settle();
        return common::make_error(err.what());
    }
}

// After a failed pass: the work it queued finishes before anything reuses the buffers it reads or writes,
// and the next pass starts the ring afresh.
void GpuTransformer::settle() noexcept {
    auto& m = *impl_;
    for (const gpu::Stream* stream : {&m.compute, &m.copy}) {
        try {
            stream->synchronize();
        } catch (const gpu::Error&) {
            // the device failed: nothing is left running to wait for
        }
    }
    m.prefetched = 0;
    m.ring_head = 0;
}

}  // namespace runner
