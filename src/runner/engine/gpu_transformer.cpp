#include "runner/engine/gpu_transformer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <thread>
#include <tuple>

#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/engine/decoder_layer.h"
#include "runner/engine/gpu_layer_ring.h"
#include "runner/engine/gpu_split_timing.h"
#include "runner/engine/transformer.h"
#include "runner/offload/layer_cache.h"
#include "runner/offload/layer_slab.h"

namespace runner {

namespace {

using namespace layer_slot;

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

KernelNeeds gpu_kernel_needs() { return {gpu::Blas::available(), gpu::attention_scratch_bytes}; }

struct GpuTransformer::Impl {
    ModelWeights w;
    std::vector<LayerLayout> layouts;         // [n_layer]; a split layer's is its split.layout
    std::vector<SplitLayout> split;           // [n_layer], for the layers split_.split marks
    std::vector<gpu::DeviceBuffer> resident;  // [n_layer], empty for streamed layers
    std::vector<gpu::PinnedBuffer> pinned;    // [n_layer], empty for resident and disk layers
    std::vector<int> streamed;                // streamed layer indices, in order
    std::vector<bool> disk_verified;          // [n_layer]: a cached disk layer's checksum checked this session
    LayerRing ring;
    std::size_t decode_slot_bytes = 0;  // what one split layer's GPU part takes in the ring (0: no split)
    gpu::DeviceBuffer head, head_norm, device_inv_freq;
    gpu::DeviceBuffer kv_device;                   // each layer's near rows of keys, then of values
    gpu::PinnedBuffer kv_host;                     // and its far rows, where the plan splits its cache
    std::vector<gpu::KvRows> kv;                   // [n_layer]: each layer's [n_ctx, n_head_kv * head_dim]
    gpu::DeviceBuffer kv_stage;                    // a split layer's keys, then values, during a longer pass
    gpu::DeviceBuffer x;                           // [max_pass, n_embd]  residual stream of a forward pass
    gpu::DeviceBuffer xb, q, k, v, att, gate, up;  // one micro-batch
    gpu::DeviceBuffer logits, positions;
    gpu::DeviceBuffer attention_scratch;  // split-key partials for decode
    gpu::PinnedBuffer host_x, host_positions, host_logits;
    gpu::Stream compute;
    std::optional<gpu::Blas> blas;  // tensor-core products for micro-batches, where the build has a BLAS
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

    // A decode step's first graph_layers layers (every layer when all are resident, else the resident ones
    // before the first streamed layer) as one launch: whether they may be (asked for, some such layer, recording
    // has not failed), the last one recorded, and each of those layers' attention_variant it was recorded for.
    bool graphs = false;
    int graph_layers = 0;
    gpu::Graph decode_graph;
    std::vector<int> decode_graph_key;

    const void* tensor(const std::byte* base, int layer, Slot s) const {
        const auto& layout = layouts[static_cast<std::size_t>(layer)];
        return layout.size[s] ? base + layout.offset[s] : nullptr;
    }
    WeightType type(int layer, Slot s) const { return layouts[static_cast<std::size_t>(layer)].type[s]; }
    void allocate_kv_cache(const ModelConfig& c, const GpuPlan& plan);
};

// Each layer's keys and values: the rows the plan keeps in VRAM in one device buffer, the rows beyond them
// in one pinned host buffer (the kernels write and read them over the link, as they read a split layer's
// host sums).
void GpuTransformer::Impl::allocate_kv_cache(const ModelConfig& c, const GpuPlan& plan) {
    const std::size_t row = kv_row_bytes(c, plan.kv_type);
    std::size_t near = 0, far = 0;
    for (const int rows : plan.kv_near_rows) {
        near += static_cast<std::size_t>(rows);
        far += static_cast<std::size_t>(plan.n_ctx - rows);
    }
    kv_device = gpu::DeviceBuffer(2 * near * row);
    if (far > 0) kv_host = gpu::PinnedBuffer(2 * far * row);
    if (plan.kv_stage_bytes > 0) kv_stage = gpu::DeviceBuffer(plan.kv_stage_bytes);
    std::byte* device = kv_device.as<std::byte>();
    std::byte* host = kv_host.data();
    for (const int rows : plan.kv_near_rows) {
        const std::size_t near_bytes = static_cast<std::size_t>(rows) * row;
        const std::size_t far_bytes = static_cast<std::size_t>(plan.n_ctx - rows) * row;
        gpu::KvRows layer{device, device + near_bytes};
        if (far_bytes > 0) {
            layer.near_rows = rows;
            layer.k_far = host;
            layer.v_far = host + far_bytes;
            host += 2 * far_bytes;
        }
        device += 2 * near_bytes;
        kv.push_back(layer);
    }
}

common::Result<std::unique_ptr<GpuTransformer>> GpuTransformer::create(const WeightSource& source, ModelWeights weights,
                                                                       int n_ctx, GpuPlan plan) {
    const ModelConfig& c = source.config();
    // A plan made for another context or for kernels other than this build's would under-allocate.
    if (plan.n_ctx != n_ctx ||
        plan.attention_scratch_bytes < attention_scratch_bytes(c, n_ctx, plan.max_batch, gpu_kernel_needs()) ||
        (plan.blas && !gpu::Blas::available()))
        return common::make_error("the GPU plan was made for a context of " + std::to_string(plan.n_ctx) +
                                  " or for other kernels; plan with gpu_kernel_needs() for a context of " +
                                  std::to_string(n_ctx));
    try {
        auto m = std::make_unique<Impl>();
        m->w = std::move(weights);
        const std::size_t e = static_cast<std::size_t>(c.n_embd), hd = static_cast<std::size_t>(c.head_dim);
        const std::size_t qw = c.n_head * hd, kvw = c.n_head_kv * hd, nb = static_cast<std::size_t>(plan.max_batch);

        // the layers: resident ones allocated now, streamed ones through the ring
        std::size_t largest = 0;
        for (std::size_t i = 0; i < m->w.layers.size(); ++i) {
            m->layouts.push_back(layout_of(m->w.layers[i], plan.compression));
            largest = std::max(largest, m->layouts.back().bytes);
            m->pinned.emplace_back();
            if (plan.resident[i]) {
                m->resident.emplace_back(m->layouts.back().bytes);
            } else {
                m->resident.emplace_back();
                m->streamed.push_back(static_cast<int>(i));
            }
        }
        if (plan.ring_slots > 0)
            m->ring = LayerRing(plan.ring_slots, plan.slot_bytes, plan.disk_bytes > 0 ? largest : 0);

        // the output head, RoPE's frequencies, the KV cache, activations and their host copies
        m->head = gpu::DeviceBuffer(m->w.output->bytes);
        m->head_norm = gpu::DeviceBuffer(m->w.output_norm->bytes);
        const auto inv_freq = rope_inv_freq(c);
        m->device_inv_freq = gpu::DeviceBuffer(inv_freq.size() * sizeof(float));
        gpu::copy_to_device(m->device_inv_freq.data(), inv_freq.data(), inv_freq.size() * sizeof(float), m->compute);
        m->allocate_kv_cache(c, plan);
        const auto pass = static_cast<std::size_t>(plan.max_pass);
        m->x = gpu::DeviceBuffer(pass * e * sizeof(float));
        m->xb = gpu::DeviceBuffer(nb * std::max(e, qw) * sizeof(float));  // the output projection's scratch too
        m->q = gpu::DeviceBuffer(nb * qw * sizeof(float));
        m->att = gpu::DeviceBuffer(nb * qw * sizeof(float));
        m->k = gpu::DeviceBuffer(nb * kvw * sizeof(float));
        m->v = gpu::DeviceBuffer(nb * kvw * sizeof(float));
        m->gate = gpu::DeviceBuffer(nb * c.n_ff * sizeof(float));
        m->up = gpu::DeviceBuffer(nb * c.n_ff * sizeof(float));
        m->logits = gpu::DeviceBuffer(static_cast<std::size_t>(c.n_vocab) * sizeof(float));
        m->positions = gpu::DeviceBuffer(pass * sizeof(int));
        m->attention_scratch = gpu::DeviceBuffer::zeroed(plan.attention_scratch_bytes, m->compute);
        m->host_x = gpu::PinnedBuffer(pass * e * sizeof(float));
        m->host_positions = gpu::PinnedBuffer(pass * sizeof(int));
        m->host_logits = gpu::PinnedBuffer(static_cast<std::size_t>(c.n_vocab) * sizeof(float));
        m->logits_out.resize(static_cast<std::size_t>(c.n_vocab));
        if (plan.blas)
            m->blas.emplace(m->compute, nb * widest_input(c), plan.widens_weights ? largest_projection(c) : 0);
        m->graph_layers =
            static_cast<int>(std::find(plan.resident.begin(), plan.resident.end(), false) - plan.resident.begin());
        m->graphs = plan.graphs.value_or(gpu::graphs_by_default()) && m->graph_layers > 0;
        m->compute.synchronize();
        return std::unique_ptr<GpuTransformer>(new GpuTransformer(c, n_ctx, std::move(plan), std::move(m)));
    } catch (const gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    }
}

GpuTransformer::GpuTransformer(const ModelConfig& config, int n_ctx, GpuPlan plan, std::unique_ptr<Impl> impl)
    : config_(config), n_ctx_(n_ctx), plan_(std::move(plan)), impl_(std::move(impl)) {
    split_.split.assign(impl_->w.layers.size(), false);
}

int GpuTransformer::graph_layers() const { return impl_->graphs ? impl_->graph_layers : 0; }

GpuTransformer::~GpuTransformer() {
    // A decode step returns with the next step's first layers still being copied into the ring.
    if (impl_) settle();
}

common::Result<bool> GpuTransformer::load(const ProgressFn& progress) {
    auto& m = *impl_;
    try {
        // the output head and the resident layers first, then the split decided (timing the GPU's steps
        // without the host needs them; a split layer's slab puts the host's rows last), then every other
        // layer into pinned RAM or left in its file
        gpu::copy_to_device(m.head.data(), m.w.output->data, m.w.output->bytes, m.compute);
        gpu::copy_to_device(m.head_norm.data(), m.w.output_norm->data, m.w.output_norm->bytes, m.compute);
        std::size_t done = m.w.output->bytes + m.w.output_norm->bytes, total = done;
        for (const auto& layout : m.layouts) total += layout.bytes;
        if (!progress(done, total)) return false;
        const auto load_layers = [&](bool resident) -> common::Result<bool> {
            for (std::size_t i = 0; i < m.w.layers.size(); ++i) {
                if (plan_.resident[i] != resident) continue;
                if (auto error = load_layer(i)) return *error;
                done += m.layouts[i].bytes;
                if (!progress(done, total)) return false;
            }
            return true;
        };
        if (auto loaded = load_layers(true); !loaded || !*loaded) return loaded;
        if (auto error = choose_split()) return *error;
        if (auto loaded = load_layers(false); !loaded || !*loaded) return loaded;

        // the ring streams the others, pinned or from disk
        std::vector<RingLayer> ring_layers;
        for (const int layer : m.streamed) {
            const auto li = static_cast<std::size_t>(layer);
            const std::size_t bytes = m.layouts[li].bytes;
            ring_layers.push_back({m.pinned[li].data(), bytes, split_.split[li] ? m.split[li].gpu_bytes : bytes});
        }
        // A cached layer's checksum is checked the first time it is read: hashing every pass would add a
        // quarter to a read at disk speed, and the file is the same on later reads.
        m.disk_verified.assign(m.w.layers.size(), false);
        RingDiskReader disk{
            [&m, cache = plan_.cache, compression = plan_.compression](std::size_t i, std::byte* dst) {
                const auto layer = static_cast<std::size_t>(m.streamed[i]);
                if (cache.empty()) {
                    read_layer(dst, m.w.layers[layer], m.layouts[layer]);
                    return std::optional<common::Error>();
                }
                auto error =
                    read_cached_layer(cache, layer, m.layouts[layer], compression, dst, !m.disk_verified[layer]);
                if (!error) m.disk_verified[layer] = true;
                return error;
            },
            [&m](std::size_t next) { will_need(m.w.layers[static_cast<std::size_t>(m.streamed[next])]); }};
        m.ring.configure(std::move(ring_layers), std::move(disk), m.decode_slot_bytes);
        m.compute.synchronize();
        m.loaded = true;
        return true;
    } catch (const gpu::Error& err) {
        return common::make_error(std::string("GPU: ") + err.what());
    }
}

// A layer's slab as `layout` (layout_of's) lays it out: from the cache, checked against its checksum, else
// made from the weights.
std::optional<common::Error> GpuTransformer::whole_slab(std::byte* dst, std::size_t layer,
                                                        const LayerLayout& layout) const {
    if (!plan_.cache.empty()) return read_cached_layer(plan_.cache, layer, layout, plan_.compression, dst, true);
    fill_slab(dst, impl_->w.layers[layer], layout, std::max(1u, std::thread::hardware_concurrency()));
    return std::nullopt;
}

// Which streamed layers decode split between the GPU and the host, and how many MLP rows the host
// takes (timing both paths when asked to decide), before the slabs are laid out.
std::optional<common::Error> GpuTransformer::choose_split() {
    auto& m = *impl_;
    const auto candidates = split_candidates(plan_, m.w);
    SplitRates rates;
    if (!candidates.empty()) {
        m.pool = std::make_unique<cpu::ThreadPool>(plan_.threads);
        if (plan_.host_share < 0) {
            const SlabMaker slab = [this](std::byte* dst, std::size_t layer, const LayerLayout& layout) {
                return whole_slab(dst, layer, layout);
            };
            auto measured =
                time_split({m.w, config_, plan_.compression, slab, m.ring.first_slot(), m.ring.copy_stream(), *m.pool},
                           candidates);
            if (!measured) return measured.error();
            rates = *measured;
            std::tie(rates.gpu_alone, rates.split_wait) = time_without_host();
        }
    }
    split_ = decide_split(plan_, m.w, config_, candidates, rates);
    if (split_.host_rows == 0) return std::nullopt;

    const auto n_layer = m.w.layers.size();
    m.split.resize(n_layer);
    m.host_mlp.resize(n_layer);
    for (const int layer : candidates) {
        const auto li = static_cast<std::size_t>(layer);
        m.split[li] = split_layout(m.w.layers[li], plan_.compression, config_.n_ff - split_.host_rows);
        m.layouts[li] = m.split[li].layout;
        m.decode_slot_bytes = std::max(m.decode_slot_bytes, slab_aligned(m.split[li].gpu_bytes));
    }
    if (!split_.cut_ring) m.decode_slot_bytes = plan_.slot_bytes;
    const std::size_t e = static_cast<std::size_t>(config_.n_embd);
    m.host_xb.resize(gpu_host_max_tokens * e);
    m.host_gate.resize(gpu_host_max_tokens * static_cast<std::size_t>(split_.host_rows));
    m.host_partial = gpu::PinnedBuffer(gpu_host_max_tokens * e * sizeof(float));
    return std::nullopt;
}

// How long a decode step keeps the host from its rows (SplitRates::gpu_alone and split_wait): the resident
// layers (loaded by now) and the logits; and from enqueueing a layer to its MLP input reaching the host,
// timed on the last resident layer (0 where none is: every layer streams). Run as a decode step runs them,
// the first layers from their graph where graphs are on; the fastest of three rounds, at the cache's first
// position (which a first pass writes again). Nothing of them is kept: decode steps record their own graph,
// and stats() counts only theirs.
std::pair<double, double> GpuTransformer::time_without_host() {
    auto& m = *impl_;
    const auto seconds_since = [](std::chrono::steady_clock::time_point start) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const auto last_resident = std::find(plan_.resident.rbegin(), plan_.resident.rend(), true);
    const std::int32_t token[] = {0};
    double alone = std::numeric_limits<double>::infinity(), wait = alone;
    for (int round = 0; round < 3; ++round) {
        auto start = std::chrono::steady_clock::now();
        for (int layer = begin_pass(token, 0); layer < config_.n_layer; ++layer) {
            const auto li = static_cast<std::size_t>(layer);
            if (plan_.resident[li]) forward_on_gpu(layer, m.resident[li].as<std::byte>(), 1, 0, false);
        }
        enqueue_logits(1);
        read_logits();
        alone = std::min(alone, seconds_since(start));
        if (last_resident == plan_.resident.rend()) continue;
        const auto layer = static_cast<int>(plan_.resident.rend() - last_resident) - 1;
        start = std::chrono::steady_clock::now();
        forward_on_gpu(layer, m.resident[static_cast<std::size_t>(layer)].as<std::byte>(), 1, 0, true);
        m.x_ready.synchronize();
        wait = std::min(wait, seconds_since(start));
        m.compute.synchronize();
    }
    m.decode_graph = gpu::Graph();
    m.decode_graph_key.clear();
    stats_.graph_steps = 0;
    stats_.graph_records = 0;
    return {alone, std::isfinite(wait) ? wait : 0};
}

// A layer into VRAM (resident), into pinned RAM (streamed, held), or left in its file (read every pass).
// Resident and pinned layers go through a slab as the kernels read them (quantized or not); a split
// layer's is laid out by split_layout, from its tensors, or compressed from its whole slab.
std::optional<common::Error> GpuTransformer::load_layer(std::size_t layer) {
    auto& m = *impl_;
    const LayerWeights& l = m.w.layers[layer];
    const auto& layout = m.layouts[layer];
    const auto fill = [&](std::byte* dst) -> std::optional<common::Error> {
        if (!split_.split[layer]) return whole_slab(dst, layer, layout);
        std::vector<std::byte> whole;
        if (plan_.compression != Compression::none) {
            const auto whole_layout = layout_of(l, plan_.compression);
            whole.resize(whole_layout.bytes);
            if (auto error = whole_slab(whole.data(), layer, whole_layout)) return error;
        }
        fill_split_slab(dst, l, m.split[layer], whole.data());
        return std::nullopt;
    };
    if (plan_.resident[layer]) {
        std::vector<std::byte> slab(layout.bytes);
        if (auto error = fill(slab.data())) return error;
        gpu::copy_to_device(m.resident[layer].data(), slab.data(), layout.bytes, m.compute);
        m.compute.synchronize();
        return std::nullopt;
    }
    if (!plan_.pinned[layer]) {
        dont_need(l);  // read from the file on every pass: nothing to hold now
        return std::nullopt;
    }
    // A pinned copy crosses the link at full speed; the file's pages are then dropped so the layer is held
    // in RAM once.
    gpu::PinnedBuffer host(layout.bytes);
    if (auto error = fill(host.data())) return error;
    dont_need(l);
    m.pinned[layer] = std::move(host);
    if (split_.split[layer]) {
        const auto& split = m.split[layer];
        const std::byte* base = m.pinned[layer].data();
        const auto e = static_cast<std::size_t>(l.w_down->shape[0]), h = static_cast<std::size_t>(split.host_rows);
        // a GGUF's down may be stored in another type than gate and up
        const auto matrix = [&](std::size_t offset, Slot s, const TensorView& t, std::size_t rows, std::size_t cols) {
            return slab_matrix(base + offset, layout.type[s], t.dtype, rows, cols);
        };
        m.host_mlp[layer] = {*l.ffn_norm, matrix(split.host_gate, w_gate, *l.w_gate, h, e),
                             matrix(split.host_up, w_up, *l.w_up, h, e),
                             matrix(split.host_down, w_down, *l.w_down, e, h)};
        m.host_mlp[layer].norm.data = base + layout.offset[ffn_norm];
        m.host_mlp[layer].norm.file = nullptr;
    }
    return std::nullopt;
}

common::Result<std::span<const float>> GpuTransformer::forward(std::span<const std::int32_t> tokens, int n_past) {
    if (auto error = check_forward(config_, n_ctx_, tokens, n_past)) return *error;
    auto& m = *impl_;
    if (!m.loaded) return common::make_error("the model's weights are not loaded yet");
    const auto fail = [this](const common::Error& error) {
        settle();
        stats_.bytes_copied = impl_->ring.bytes_copied();
        return error;
    };
    try {
        // A prompt longer than a pass's residual stream runs in passes of max_pass tokens.
        const auto max_pass = static_cast<std::size_t>(plan_.max_pass);
        for (std::size_t done = 0; done < tokens.size(); done += max_pass) {
            // The next pass's embed rewrites the pinned rows this pass's upload may not have read yet.
            if (done > 0) m.compute.synchronize();
            const auto part = tokens.subspan(done, std::min(max_pass, tokens.size() - done));
            if (auto error = run_pass(part, n_past + static_cast<int>(done))) return fail(*error);
            if (done + part.size() == tokens.size()) {
                // A decode step that replayed every layer from its graph enqueued the logits with them.
                if (part.size() > 1 || graph_layers() < config_.n_layer) enqueue_logits(static_cast<int>(part.size()));
                read_logits();
            }
        }
        stats_.bytes_copied = m.ring.bytes_copied();
        return std::span<const float>(m.logits_out);
    } catch (const gpu::Error& err) {
        return fail(common::make_error(std::string("GPU: ") + err.what()));
    } catch (const std::runtime_error& err) {
        // the host's side: a thread that cannot start to read a disk layer
        return fail(common::make_error(err.what()));
    }
}

// One pass of up to max_pass tokens through every layer: resident ones from VRAM, streamed ones as the
// ring brings them. A decoding step's split layers leave their MLP's host rows to the host, and its
// resident layers before the first streamed one replay from a recorded graph where graphs are on.
std::optional<common::Error> GpuTransformer::run_pass(std::span<const std::int32_t> tokens, int n_past) {
    auto& m = *impl_;
    const int n = static_cast<int>(tokens.size());
    const int first = begin_pass(tokens, n_past);
    if (auto error = m.ring.begin(n <= gpu_host_max_tokens)) return error;
    std::size_t next_streamed = 0;
    for (int layer = first; layer < config_.n_layer; ++layer) {
        const auto li = static_cast<std::size_t>(layer);
        const bool host_mlp = m.ring.copies_decode_parts() && split_.split[li];
        if (plan_.resident[li]) {
            forward_on_gpu(layer, m.resident[li].as<std::byte>(), n, n_past, host_mlp);
        } else {
            forward_on_gpu(layer, m.ring.wait_for(next_streamed, m.compute), n, n_past, host_mlp);
            if (auto error = m.ring.done_with(next_streamed++, m.compute)) return error;
        }
        if (host_mlp) mlp_on_host(layer, n);
    }
    m.ring.end();
    ++stats_.passes;
    return std::nullopt;
}

// The pass's tokens embedded into the residual stream, or for a decode step where graphs are on, its first
// graph_layers layers replayed with them: the first layer still to run.
int GpuTransformer::begin_pass(std::span<const std::int32_t> tokens, int n_past) {
    auto& m = *impl_;
    embed_on_host(tokens, n_past);
    if (tokens.size() == 1 && m.graphs && replay_first_layers(n_past)) return m.graph_layers;
    upload_embedded(static_cast<int>(tokens.size()));
    return 0;
}

// A decode step's first graph_layers layers as one launch, with the upload of the token that embed_on_host
// put in the pinned buffers and, when they are all the layers, the logits: recorded at the first step and
// again where attention's launches change (attention_variant: a power of two of key tiles, or the far rows
// reached), replayed otherwise. false: recording failed, graphs are off for this engine, and the step is
// still to run launch by launch.
bool GpuTransformer::replay_first_layers(int n_past) {
    auto& m = *impl_;
    std::vector<int> key;
    for (int layer = 0; layer < m.graph_layers; ++layer)
        key.push_back(gpu::attention_variant(1, config_.n_head, n_past + 1, m.kv[static_cast<std::size_t>(layer)]));
    if (!m.decode_graph || key != m.decode_graph_key) {
        m.decode_graph = gpu::Graph();
        try {
            m.decode_graph = gpu::Graph(m.compute, [&] {
                upload_embedded(1);
                for (int layer = 0; layer < m.graph_layers; ++layer)
                    forward_on_gpu(layer, m.resident[static_cast<std::size_t>(layer)].as<std::byte>(), 1, n_past,
                                   false);
                if (m.graph_layers == config_.n_layer) enqueue_logits(1);
            });
        } catch (const std::exception& err) {
            m.graphs = false;
            stats_.graph_error = err.what();
            return false;
        }
        m.decode_graph_key = std::move(key);
        ++stats_.graph_records;
    }
    m.decode_graph.launch(m.compute);
    ++stats_.graph_steps;
    return true;
}

// The tokens' embedding rows, looked up on the host (the table stays out of VRAM), and their positions,
// into the pinned buffers that upload_embedded copies into the residual stream.
void GpuTransformer::embed_on_host(std::span<const std::int32_t> tokens, int n_past) {
    auto& m = *impl_;
    const int n = static_cast<int>(tokens.size()), e = config_.n_embd;
    const auto& table = *m.w.token_embd;
    const std::size_t stride = row_bytes(table.dtype, static_cast<std::size_t>(e));
    auto* host_x = reinterpret_cast<float*>(m.host_x.data());
    auto* host_pos = reinterpret_cast<int*>(m.host_positions.data());
    for (int t = 0; t < n; ++t) {
        cpu::convert_row(table.dtype,
                         table.data + static_cast<std::size_t>(tokens[static_cast<std::size_t>(t)]) * stride,
                         host_x + static_cast<std::size_t>(t) * e, static_cast<std::size_t>(e));
        host_pos[t] = n_past + t;
    }
}

void GpuTransformer::upload_embedded(int n) {
    auto& m = *impl_;
    const auto rows = static_cast<std::size_t>(n);
    gpu::copy_to_device(m.x.data(), m.host_x.data(), rows * static_cast<std::size_t>(config_.n_embd) * sizeof(float),
                        m.compute);
    gpu::copy_to_device(m.positions.data(), m.host_positions.data(), rows * sizeof(int), m.compute);
}

// decoder_layer's steps on the GPU for one micro-batch: its mb tokens from c0 on, the layer's weights at
// `base`, the residual stream and the KV cache in VRAM. `blocks`: the MLP rows the GPU computes.
struct GpuTransformer::LayerPass {
    const GpuTransformer& t;
    Impl& m;
    int layer;
    const std::byte* base;
    int c0, mb;
    int n_keys;  // the keys this micro-batch's last token attends to: the cache in use, not its capacity
    bool host_mlp;
    const std::vector<gpu::MlpBlock>& blocks;
    gpu::KvRows cache;  // this layer's

    const ModelConfig& c() const { return t.config_; }
    const void* at(Slot slot) const { return m.tensor(base, layer, slot); }
    WeightType type(Slot slot) const { return m.type(layer, slot); }
    float* x() const { return m.x.as<float>() + static_cast<std::size_t>(c0) * c().n_embd; }
    const int* positions() const { return m.positions.as<int>() + c0; }
    const gpu::Blas* blas() const { return m.blas ? &*m.blas : nullptr; }
    int q_width() const { return c().n_head * c().head_dim; }
    int kv_width() const { return c().n_head_kv * c().head_dim; }

    void norm_qkv() {
        const gpu::Product qkv[] = {{m.q.as<float>(), at(wq), type(wq), q_width(), at(bq), type(bq)},
                                    {m.k.as<float>(), at(wk), type(wk), kv_width(), at(bk), type(bk)},
                                    {m.v.as<float>(), at(wv), type(wv), kv_width(), at(bv), type(bv)}};
        gpu::norm_matmul(qkv, x(), {at(attn_norm), type(attn_norm), c().rms_eps}, m.xb.as<float>(), mb, c().n_embd,
                         m.compute, blas());
    }
    void qk_norm() {
        const int hd = c().head_dim;
        gpu::rmsnorm(m.q.as<float>(), m.q.as<float>(), at(q_norm), type(q_norm), mb * c().n_head, hd, c().rms_eps,
                     m.compute);
        gpu::rmsnorm(m.k.as<float>(), m.k.as<float>(), at(k_norm), type(k_norm), mb * c().n_head_kv, hd, c().rms_eps,
                     m.compute);
    }
    // One token's attention turns q and k and stores k and v itself (RopeFirst): a launch less a layer.
    void rope_store_kv() {
        if (gpu::attention_ropes(mb)) return;
        gpu::rope_store_kv(m.q.as<float>(), m.k.as<float>(), m.v.as<float>(), cache, t.plan_.kv_type, mb, c().n_head,
                           c().n_head_kv, c().head_dim, m.device_inv_freq.as<float>(), positions(), c().rope_pairs,
                           m.compute);
    }
    // Decode attention writes its output as the output projection's int8 input too, where that product takes
    // one: a launch less a layer.
    bool attention_quantizes() const {
        return gpu::takes_int8_input(type(wo), mb, q_width()) && gpu::attention_writes_int8(mb, c().head_dim);
    }
    void attention() {
        const gpu::RopeFirst rope{m.k.as<float>(), m.v.as<float>(), m.device_inv_freq.as<float>(), c().rope_pairs};
        gpu::attention(m.att.as<float>(), m.q.as<float>(), cache, t.plan_.kv_type, mb, positions(), c().n_head,
                       c().n_head_kv, c().head_dim, n_keys, m.attention_scratch.as<float>(), m.compute,
                       attention_quantizes() ? m.xb.as<float>() : nullptr, gpu::attention_ropes(mb) ? &rope : nullptr);
    }
    void output_add() {
        gpu::matmul_add(x(), m.att.as<float>(), at(wo), type(wo), m.xb.as<float>(), mb, q_width(), c().n_embd,
                        m.compute, blas(), attention_quantizes());
    }
    // With host_mlp the MLP's input first goes to the host, which computes the split layer's other rows
    // (mlp_on_host).
    void mlp() {
        const int e = c().n_embd;
        if (host_mlp) {
            auto* to = m.host_x.data() + static_cast<std::size_t>(c0) * e * sizeof(float);
            gpu::copy_to_host(to, x(), static_cast<std::size_t>(mb) * e * sizeof(float), m.compute);
            m.x_ready.record(m.compute);  // the last micro-batch's: the stream has copied the earlier ones by then
        }
        gpu::norm_mlp(x(), {at(ffn_norm), type(ffn_norm), c().rms_eps}, blocks, type(w_gate), type(w_down),
                      m.gate.as<float>(), m.up.as<float>(), m.xb.as<float>(), mb, e, m.compute, blas());
    }
};

// One layer on the GPU for the pass's n tokens (residual stream in x), in micro-batches that share
// the layer's weights at `base`. With host_mlp (a split layer's decode step) the MLP's input goes to
// the host (x_ready) and the GPU computes only its own rows; otherwise it computes them all.
void GpuTransformer::forward_on_gpu(int layer, const std::byte* base, int n, int n_past, bool host_mlp) {
    auto& m = *impl_;
    const auto li = static_cast<std::size_t>(layer);
    const auto at = [&](Slot slot) { return m.tensor(base, layer, slot); };
    // The MLP's blocks: all of it, or a split layer's GPU rows and then, unless the host takes them, its
    // host rows.
    std::vector<gpu::MlpBlock> blocks;
    if (split_.split[li]) {
        const auto& split = m.split[li];
        if (split.gpu_rows > 0) blocks.push_back({at(w_gate), at(w_up), at(w_down), split.gpu_rows});
        if (!host_mlp)
            blocks.push_back({base + split.host_gate, base + split.host_up, base + split.host_down, split.host_rows});
    } else {
        blocks.push_back({at(w_gate), at(w_up), at(w_down), config_.n_ff});
    }
    // A pass of several tokens whose keys reach past a layer's near rows attends to a whole copy of its cache
    // in VRAM: each of its query tiles reads every key, which over the link would cost the far keys in use
    // once per tile instead of once.
    const gpu::KvRows& cache = m.kv[li];
    const bool staged = n > 1 && n_past + n > cache.near_rows;
    gpu::KvRows rows = cache;
    if (staged) {
        rows = {m.kv_stage.data(), m.kv_stage.as<std::byte>() + m.kv_stage.bytes() / 2};
        copy_kv_rows(rows, cache, 0, n_past);
    }
    for (int c0 = 0; c0 < n; c0 += plan_.max_batch) {
        LayerPass pass{*this,
                       m,
                       layer,
                       base,
                       c0,
                       std::min(plan_.max_batch, n - c0),
                       n_past + std::min(n, c0 + plan_.max_batch),
                       host_mlp,
                       blocks,
                       rows};
        decoder_layer(pass, m.w.layers[li]);
    }
    if (staged) copy_kv_rows(cache, rows, n_past, n_past + n);
}

// Rows [from, to) of a layer's keys and values from one cache into another, each a whole cache or a split
// one (near rows in VRAM, far rows in pinned host memory), on the compute stream.
void GpuTransformer::copy_kv_rows(const gpu::KvRows& dst, const gpu::KvRows& src, int from, int to) {
    auto& m = *impl_;
    const std::size_t row = kv_row_bytes(config_, plan_.kv_type);
    // [from, to) cut where either side's near rows end
    std::vector<int> cuts = {from, to};
    for (const int near : {dst.near_rows, src.near_rows})
        if (near > from && near < to) cuts.push_back(near);
    std::sort(cuts.begin(), cuts.end());
    const auto at = [row](const gpu::KvRows& c, bool keys, int r) {
        const bool near = r < c.near_rows;
        void* base = near ? (keys ? c.k : c.v) : (keys ? c.k_far : c.v_far);
        return static_cast<std::byte*>(base) + static_cast<std::size_t>(near ? r : r - c.near_rows) * row;
    };
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
        const int r = cuts[i];
        const std::size_t bytes = static_cast<std::size_t>(cuts[i + 1] - r) * row;
        if (bytes == 0) continue;
        const bool dst_near = r < dst.near_rows, src_near = r < src.near_rows;
        for (const bool keys : {true, false}) {
            void* d = at(dst, keys, r);
            const void* s = at(src, keys, r);
            if (dst_near && src_near)
                gpu::copy_on_device(d, s, bytes, m.compute);
            else if (dst_near)
                gpu::copy_to_device(d, s, bytes, m.compute);
            else
                gpu::copy_to_host(d, s, bytes, m.compute);
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

// The final rmsnorm of the last of n tokens, then the classifier, into the pinned logits.
void GpuTransformer::enqueue_logits(int n) {
    auto& m = *impl_;
    const auto& c = config_;
    const gpu::Blas* blas = m.blas ? &*m.blas : nullptr;
    const float* last = m.x.as<float>() + static_cast<std::size_t>(n - 1) * c.n_embd;
    const gpu::Product head[] = {{m.logits.as<float>(), m.head.data(), stored_type(m.w.output->dtype), c.n_vocab}};
    gpu::norm_matmul(head, last, {m.head_norm.data(), stored_type(m.w.output_norm->dtype), c.rms_eps}, m.xb.as<float>(),
                     1, c.n_embd, m.compute, blas);
    gpu::copy_to_host(m.host_logits.data(), m.logits.data(), m.logits_out.size() * sizeof(float), m.compute);
}

// Once the stream is done: the logits into logits_out.
void GpuTransformer::read_logits() {
    auto& m = *impl_;
    m.compute.synchronize();
    std::memcpy(m.logits_out.data(), m.host_logits.data(), m.logits_out.size() * sizeof(float));
}

// After a failed pass: the work it queued finishes before anything reuses the buffers it reads or writes,
// and the next pass starts the ring afresh.
void GpuTransformer::settle() noexcept {
    auto& m = *impl_;
    try {
        m.compute.synchronize();
    } catch (const gpu::Error&) {
        // the device failed: nothing is left running to wait for
    }
    m.ring.settle();
}

}  // namespace runner
