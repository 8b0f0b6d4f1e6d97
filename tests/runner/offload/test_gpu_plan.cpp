// The VRAM planner without a GPU: published model shapes (tensors with shapes and no data), budgets,
// compressions and RAM budgets in, plans out, checked against the rules the planner promises.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>

#include "runner/offload/gpu_plan.h"
#include "runner/offload/layer_slab.h"

namespace {

constexpr std::size_t GiB = std::size_t{1} << 30;

struct Shape {
    const char* name;
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab;
    bool biases;  // Qwen2's q/k/v biases
};

// Llama 3.1 8B, Qwen2.5 7B and Llama 3.1 70B as their config.json files give them.
const Shape llama8b{"llama-3.1-8b", 4096, 32, 32, 8, 128, 14336, 128256, false};
const Shape qwen7b{"qwen2.5-7b", 3584, 28, 28, 4, 128, 18944, 152064, true};
const Shape llama70b{"llama-3.1-70b", 8192, 80, 64, 8, 128, 28672, 128256, false};

// A model's weights as bind_weights gives them, bf16, with no data behind them: the planner reads shapes.
struct ShapeModel {
    runner::ModelConfig config;
    std::deque<runner::TensorView> tensors;  // stable addresses for the weights' pointers
    runner::ModelWeights weights;

    explicit ShapeModel(const Shape& s) {
        auto& c = config;
        c.n_embd = s.n_embd;
        c.n_layer = s.n_layer;
        c.n_head = s.n_head;
        c.n_head_kv = s.n_head_kv;
        c.head_dim = s.head_dim;
        c.n_ff = s.n_ff;
        c.n_vocab = s.n_vocab;
        c.max_position = 131072;
        const std::int64_t e = s.n_embd, q = std::int64_t{s.n_head} * s.head_dim,
                           kv = std::int64_t{s.n_head_kv} * s.head_dim, ff = s.n_ff;
        weights.token_embd = tensor({s.n_vocab, e});
        weights.output_norm = tensor({e});
        weights.output = tensor({s.n_vocab, e});
        for (int i = 0; i < s.n_layer; ++i) {
            runner::LayerWeights l{};
            l.attn_norm = tensor({e});
            l.wq = tensor({q, e});
            l.wk = tensor({kv, e});
            l.wv = tensor({kv, e});
            l.wo = tensor({e, q});
            if (s.biases) {
                l.bq = tensor({q});
                l.bk = tensor({kv});
                l.bv = tensor({kv});
            }
            l.ffn_norm = tensor({e});
            l.w_gate = tensor({ff, e});
            l.w_up = tensor({ff, e});
            l.w_down = tensor({e, ff});
            weights.layers.push_back(l);
        }
    }
    const runner::TensorView* tensor(std::vector<std::int64_t> shape) {
        auto& t = tensors.emplace_back();
        t.dtype = runner::DType::bf16;
        t.bytes = static_cast<std::size_t>(
                      std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>())) *
                  2;
        t.shape = std::move(shape);
        return &t;
    }
    std::size_t layer_bytes(std::size_t i, runner::Compression compression) const {
        return runner::layout_of(weights.layers[i], compression).bytes;
    }
};

// What a CUDA build's kernels ask for: a BLAS, and split-key partials for short micro-batches.
runner::KernelNeeds kernels(bool blas = true) {
    return {blas, [](int n_tokens, int n_head, int head_dim, int n_ctx) -> std::size_t {
                if (n_tokens >= 16) return 0;
                const int splits = std::min(32, (n_ctx + 255) / 256);
                return splits == 1 ? 0 : std::size_t(n_tokens) * n_head * splits * (head_dim + 2) * sizeof(float);
            }};
}

runner::GpuOptions options(std::size_t vram, runner::Compression compression = runner::Compression::none,
                           int n_ctx = 4096) {
    runner::GpuOptions o;
    o.n_ctx = n_ctx;
    o.vram_budget = vram;
    o.compression = compression;
    return o;
}

runner::GpuPlan plan(const ShapeModel& m, const runner::GpuOptions& o, const runner::KernelNeeds& k = kernels()) {
    auto p = runner::plan_gpu(m.weights, m.config, o, k);
    REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message));
    return std::move(p).value();
}

// The promises every plan keeps: the layers' bytes all accounted for, the budget held, resident layers
// taken in order while they fit (a streamed layer would not have fit), the ring there exactly when a
// layer streams and big enough for any of them.
void check_plan_rules(const ShapeModel& m, const runner::GpuOptions& o, const runner::GpuPlan& p) {
    const auto n = m.weights.layers.size();
    REQUIRE(p.resident.size() == n);
    REQUIRE(p.pinned.size() == n);
    std::size_t resident = 0, streamed = 0, pinned = 0, disk = 0, largest = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto bytes = m.layer_bytes(i, o.compression);
        largest = std::max(largest, bytes);
        (p.resident[i] ? resident : streamed) += bytes;
        if (!p.resident[i]) (p.pinned[i] ? pinned : disk) += bytes;
        if (p.resident[i]) CHECK_FALSE(p.pinned[i]);
    }
    CHECK(p.resident_bytes == resident);
    CHECK(p.streamed_bytes == streamed);
    CHECK(p.disk_bytes == disk);
    CHECK(p.pinned_bytes >= pinned);
    if (o.vram_budget > 0) CHECK(p.total_bytes() <= o.vram_budget);
    const bool streams = streamed > 0;
    CHECK(p.ring_slots == (streams ? 2 : 0));
    CHECK(p.slot_bytes >= largest + runner::split_extra_bytes);
    for (std::size_t i = 0; i < n; ++i)
        if (!p.resident[i]) CHECK(p.total_bytes() + m.layer_bytes(i, o.compression) > o.vram_budget);
    CHECK(std::is_sorted(p.resident.begin(), p.resident.end(), std::greater<>()));  // uniform layers: a prefix
    CHECK(p.max_batch == std::min(o.max_batch, o.n_ctx));
    CHECK(p.n_ctx == o.n_ctx);
    // The KV cache: each layer's first rows in VRAM, the same number for every layer that keeps any (VRAM
    // goes to those before the weights); the last layers keep none only when one more layer's would not
    // fit beside the fixed part. The other rows are in host memory.
    REQUIRE(p.kv_near_rows.size() == n);
    CHECK(std::is_sorted(p.kv_near_rows.begin(), p.kv_near_rows.end(), std::greater<>()));
    const int near = p.kv_near_rows.front();
    for (const int rows : p.kv_near_rows) CHECK((rows == near || rows == 0));
    const std::size_t row_kv = runner::kv_cache_bytes(m.config, 1, o.kv_type) / n;
    std::size_t host_rows = 0;
    for (const int rows : p.kv_near_rows) host_rows += static_cast<std::size_t>(o.n_ctx - rows);
    CHECK(p.kv_host_bytes == host_rows * row_kv);
    if (near > 0 && p.kv_near_rows.back() == 0) CHECK(p.fixed_bytes + near * row_kv > o.vram_budget);
    // and then one layer's worth of VRAM stages a split layer's cache
    CHECK(p.kv_stage_bytes == (host_rows > 0 ? static_cast<std::size_t>(o.n_ctx) * row_kv : 0));
}

}  // namespace

TEST_CASE("gpu plan: without a budget, or with room for everything, every layer is resident") {
    for (const auto* shape : {&llama8b, &qwen7b, &llama70b})
        for (const auto compression : {runner::Compression::none, runner::Compression::q8, runner::Compression::q4}) {
            CAPTURE(std::string(shape->name));
            CAPTURE(std::string(runner::compression_name(compression)));
            const ShapeModel m(*shape);
            for (const std::size_t budget : {std::size_t{0}, 1024 * GiB}) {
                const auto o = options(budget, compression);
                const auto p = plan(m, o);
                check_plan_rules(m, o, p);
                CHECK(std::count(p.resident.begin(), p.resident.end(), true) == shape->n_layer);
                CHECK(p.streamed_bytes == 0);
                CHECK(p.pinned_bytes == 0);
            }
        }
}

TEST_CASE("gpu plan: a table of budgets and compressions keeps its rules, and compression keeps more resident") {
    struct Row {
        const Shape* shape;
        std::size_t budget;
        int n_ctx;
    };
    for (const auto& row :
         {Row{&llama8b, 4 * GiB, 4096}, Row{&llama8b, 8 * GiB, 32768}, Row{&llama8b, 12 * GiB, 4096},
          Row{&qwen7b, 6 * GiB, 8192}, Row{&llama70b, 24 * GiB, 4096}, Row{&llama70b, 24 * GiB, 32768}}) {
        CAPTURE(std::string(row.shape->name));
        CAPTURE(row.budget / GiB);
        CAPTURE(row.n_ctx);
        const ShapeModel m(*row.shape);
        std::vector<long> resident;
        for (const auto compression : {runner::Compression::none, runner::Compression::q8, runner::Compression::q4}) {
            CAPTURE(std::string(runner::compression_name(compression)));
            const auto o = options(row.budget, compression, row.n_ctx);
            const auto p = plan(m, o);
            check_plan_rules(m, o, p);
            if (compression == runner::Compression::none) CHECK(p.streamed_bytes > 0);
            // The fixed part holds the KV cache's near rows, f16 by default: all of them, or at least the
            // first gpu_kv_near_tokens of each layer.
            CHECK(p.kv_near_rows.front() >= std::min(row.n_ctx, runner::gpu_kv_near_tokens));
            CHECK(p.fixed_bytes > runner::kv_cache_bytes(m.config, p.kv_near_rows.front(), runner::KvType::f16));
            resident.push_back(std::count(p.resident.begin(), p.resident.end(), true));
        }
        CHECK(resident[0] <= resident[1]);
        CHECK(resident[1] <= resident[2]);
        CHECK(resident[0] < resident[2]);
    }
}

TEST_CASE("gpu plan: the KV type, the BLAS and the micro-batch change the fixed part by what they need") {
    const ShapeModel m(llama8b);
    const auto o = options(8 * GiB);
    const auto f16 = plan(m, o);
    auto o32 = o;
    o32.kv_type = runner::KvType::f32;
    const auto f32 = plan(m, o32);
    CHECK(f32.fixed_bytes - f16.fixed_bytes == runner::kv_cache_bytes(m.config, 4096, runner::KvType::f16));
    const auto no_blas = plan(m, o, kernels(false));
    CHECK(f16.fixed_bytes - no_blas.fixed_bytes == 512 * runner::widest_input(m.config) * 2);
    auto small_batch = o;
    small_batch.max_batch = 64;
    CHECK(plan(m, small_batch).fixed_bytes < f16.fixed_bytes);
    auto tiny_ctx = options(8 * GiB, runner::Compression::none, 100);
    CHECK(plan(m, tiny_ctx).max_batch == 100);
}

TEST_CASE("gpu plan: a budget that cannot hold the fixed part says what it holds and what to change") {
    const ShapeModel m(llama8b);
    const auto o = options(GiB, runner::Compression::none, 131072);
    const auto p = runner::plan_gpu(m.weights, m.config, o, kernels());
    REQUIRE_FALSE(p.ok());
    // A pass's residual stream (16,384 tokens of f32) and the micro-batch's activations, whatever the context.
    CAPTURE(p.error().message);
    CHECK(p.error().message.find("a VRAM budget of 1024 MiB cannot hold the activations (") == 0);
    CHECK(p.error().message.find("(354 MiB for passes of 16384 tokens in micro-batches of 512), the output head "
                                 "(1003 MiB) and two streaming slots (833 MiB)") != std::string::npos);
    CHECK(p.error().message.find("raise the budget, or lower the micro-batch (--max-batch)") != std::string::npos);
    // The output head (1002 MiB) and two streaming slots (832 MiB) with a short context fit in 3 GiB.
    CHECK(runner::plan_gpu(m.weights, m.config, options(3 * GiB, runner::Compression::none, 1024), kernels()).ok());
}

TEST_CASE("gpu plan: a context whose cache does not fit beside the ring keeps the last layers' caches on the host") {
    struct Row {
        const Shape* shape;
        std::size_t budget;
        int n_ctx;
        runner::Compression compression;
    };
    for (const auto& row : {Row{&llama8b, 4 * GiB, 32768, runner::Compression::none},
                            Row{&llama8b, 3 * GiB, 131072, runner::Compression::q4},
                            Row{&qwen7b, 4 * GiB, 65536, runner::Compression::q8},
                            Row{&llama70b, 12 * GiB, 131072, runner::Compression::none}}) {
        CAPTURE(std::string(row.shape->name));
        CAPTURE(row.n_ctx);
        const ShapeModel m(*row.shape);
        auto o = options(row.budget, row.compression, row.n_ctx);
        o.kv_near_tokens = 0;
        const auto p = plan(m, o);
        check_plan_rules(m, o, p);
        CHECK(p.kv_host_bytes > 0);
        CHECK(p.kv_near_rows.front() == row.n_ctx);  // the budget still holds the first layers' caches
    }
    // The 8B shape at 4 GiB: a 4 GiB cache, 128 MiB a layer, of which the VRAM left beside the head, the
    // activations and the ring takes 14 layers: 13 layers' caches and the staging for a host layer's.
    const ShapeModel m(llama8b);
    auto whole = options(4 * GiB, runner::Compression::none, 32768);
    whole.kv_near_tokens = 0;
    const auto p = plan(m, whole);
    CHECK(std::count(p.kv_near_rows.begin(), p.kv_near_rows.end(), 32768) == 13);
    CHECK(p.kv_host_bytes == 19 * (std::size_t{128} << 20));
    CHECK(p.kv_stage_bytes == (std::size_t{128} << 20));
    CHECK(std::count(p.resident.begin(), p.resident.end(), true) == 0);
    // With a context that fits nothing changes: the same plan as before this existed, cache in VRAM.
    const auto short_ctx = plan(m, options(4 * GiB, runner::Compression::none, 4096));
    CHECK(short_ctx.kv_host_bytes == 0);
    CHECK(std::count(short_ctx.resident.begin(), short_ctx.resident.end(), true) > 0);
    // The host's part of the cache comes out of the RAM budget before any streamed layer is pinned.
    auto tight = whole;
    tight.ram_budget = 6 * GiB;
    const auto pinned_less = plan(m, tight);
    CHECK(pinned_less.pinned_bytes + pinned_less.kv_host_bytes <= tight.ram_budget);
    tight.ram_budget = 2 * GiB;
    const auto refused = runner::plan_gpu(m.weights, m.config, tight, kernels());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message ==
          "the KV cache's 2432 MiB that the VRAM budget leaves to host memory do not fit in the RAM budget of 2048 "
          "MiB: lower the context, or raise the VRAM or the RAM budget");
    // Room for the ring but not for one layer's cache beside it: nowhere to stage a host layer's cache.
    const std::size_t beside_cache = p.fixed_bytes - 14 * p.kv_stage_bytes;
    auto no_room_options = whole;
    no_room_options.vram_budget = beside_cache + p.kv_stage_bytes / 2;
    const auto no_room = runner::plan_gpu(m.weights, m.config, no_room_options, kernels());
    REQUIRE_FALSE(no_room.ok());
    CHECK(no_room.error().message.find(
              "leaves no room to stage one layer's KV cache (128 MiB for a context of 32768)") != std::string::npos);
}

TEST_CASE("gpu plan: a long context that would push layers out of VRAM keeps its first positions there") {
    // The 70B shape at 22 GiB with Ollama's 32k context: the whole f16 cache takes 10 GiB; its first 8192
    // positions take 2.5 GiB, and staging a split layer's cache 128 MiB, so the rest goes to layers.
    const ShapeModel m(llama70b);
    const std::size_t layer_kv = std::size_t{128} << 20, row_kv = layer_kv / 32768;
    const auto split = options(22 * GiB, runner::Compression::none, 32768);
    const auto p = plan(m, split);
    check_plan_rules(m, split, p);
    CHECK(std::count(p.kv_near_rows.begin(), p.kv_near_rows.end(), runner::gpu_kv_near_tokens) == 80);
    CHECK(p.kv_host_bytes == 80 * (32768 - 8192) * row_kv);
    CHECK(p.kv_stage_bytes == layer_kv);
    auto whole_options = split;
    whole_options.kv_near_tokens = 0;
    const auto whole = plan(m, whole_options);
    check_plan_rules(m, whole_options, whole);
    CHECK(whole.kv_host_bytes == 0);
    const auto resident = [](const runner::GpuPlan& plan) {
        return std::count(plan.resident.begin(), plan.resident.end(), true);
    };
    const auto layer = m.layer_bytes(0, runner::Compression::none);
    const auto freed = static_cast<long>((80 * (32768 - 8192) * row_kv - layer_kv) / layer);
    CHECK(resident(p) - resident(whole) >= freed);
    CHECK(resident(p) - resident(whole) <= freed + 1);
    // A context no longer than the near positions is not split: the same plan as before this existed.
    const auto short_ctx = plan(m, options(22 * GiB, runner::Compression::none, 8192));
    CHECK(short_ctx.kv_host_bytes == 0);
    CHECK(short_ctx.kv_stage_bytes == 0);
    // Where the whole cache and every layer fit, nothing is split.
    const ShapeModel small(llama8b);
    const auto roomy = plan(small, options(40 * GiB, runner::Compression::none, 32768));
    CHECK(roomy.kv_host_bytes == 0);
    CHECK(roomy.ring_slots == 0);
    // Where the layers all fit beside more than the near positions, the cache keeps as many near as the
    // budget holds: the 8B's 15 GiB of layers and 4 GiB of cache in 18 GiB.
    const auto tight = options(18 * GiB, runner::Compression::none, 32768);
    const auto most = plan(small, tight);
    check_plan_rules(small, tight, most);
    CHECK(most.kv_near_rows.front() > runner::gpu_kv_near_tokens);
    CHECK(most.kv_near_rows.front() < 32768);
    CHECK(resident(most) == 32);
}

TEST_CASE("gpu plan: streamed layers are pinned while the RAM budget lasts, the rest come from disk") {
    const ShapeModel m(llama8b);
    const auto layer = m.layer_bytes(0, runner::Compression::none);
    for (const std::size_t ram : {std::size_t{0}, 100 * GiB, 4 * GiB, 2 * layer + 3 * layer, 2 * layer}) {
        CAPTURE(ram);
        auto o = options(4 * GiB);
        o.ram_budget = ram;
        const auto p = plan(m, o);
        check_plan_rules(m, o, p);
        const bool all_fit = ram == 0 || p.streamed_bytes <= ram;
        CHECK((p.disk_bytes == 0) == all_fit);
        if (!all_fit) {
            // Pinned layers and two staging buffers within the budget; streamed layers pinned in order.
            CHECK(p.pinned_bytes <= ram);
            CHECK(p.pinned_bytes + layer > ram);
            std::vector<bool> streamed_pinned;
            for (std::size_t i = 0; i < p.pinned.size(); ++i)
                if (!p.resident[i]) streamed_pinned.push_back(p.pinned[i]);
            CHECK(std::is_sorted(streamed_pinned.begin(), streamed_pinned.end(), std::greater<>()));
        }
    }
}

TEST_CASE("gpu plan: compressed layers read from disk need prepare's cache") {
    const ShapeModel m(llama8b);
    auto o = options(4 * GiB, runner::Compression::q4);
    o.ram_budget = 2 * GiB;
    const auto without = runner::plan_gpu(m.weights, m.config, o, kernels());
    REQUIRE_FALSE(without.ok());
    CHECK(without.error().message.find("run ollama-airllm prepare") != std::string::npos);
    o.cache = "/var/cache/ollama-airllm/llama/q4";
    const auto with = plan(m, o);
    check_plan_rules(m, o, with);
    CHECK(with.disk_bytes > 0);
    CHECK(with.cache == o.cache);
    // The cache is only used with compression.
    auto uncompressed = options(4 * GiB);
    uncompressed.cache = o.cache;
    CHECK(plan(m, uncompressed).cache.empty());
}

TEST_CASE("gpu split: only pinned streamed layers are candidates, and host_share fixes the host's rows") {
    const ShapeModel m(llama8b);
    auto o = options(4 * GiB);
    o.ram_budget = 8 * GiB;
    o.host_share = 50;
    const auto p = plan(m, o);
    const auto candidates = runner::split_candidates(p, m.weights);
    REQUIRE_FALSE(candidates.empty());
    for (const int i : candidates) {
        CHECK_FALSE(p.resident[static_cast<std::size_t>(i)]);
        CHECK(p.pinned[static_cast<std::size_t>(i)]);
    }
    CHECK(static_cast<std::size_t>(std::count(p.pinned.begin(), p.pinned.end(), true)) == candidates.size());
    const auto half = runner::decide_split(p, m.weights, m.config, candidates, {});
    CHECK(half.host_rows == 14336 / 2);
    CHECK(static_cast<std::size_t>(std::count(half.split.begin(), half.split.end(), true)) == candidates.size());
    // Some streamed layers come from disk: decode steps keep the ring's whole slots.
    REQUIRE(p.disk_bytes > 0);
    CHECK_FALSE(half.cut_ring);
    auto all_pinned = o;
    all_pinned.ram_budget = 0;
    const auto pinned_plan = plan(m, all_pinned);
    const auto every =
        runner::decide_split(pinned_plan, m.weights, m.config, runner::split_candidates(pinned_plan, m.weights), {});
    CHECK(every.cut_ring);
    auto none = p;
    none.host_share = 0;
    CHECK(runner::split_candidates(none, m.weights).empty());
    auto all = p;
    all.host_share = 100;
    CHECK(runner::decide_split(all, m.weights, m.config, candidates, {}).host_rows == 14336);
    auto odd = p;
    odd.host_share = 33;  // 4730.9 host rows: the GPU's 9605.1 round to a multiple of 8
    CHECK(runner::decide_split(odd, m.weights, m.config, candidates, {}).host_rows == 14336 - 9608);
}

TEST_CASE("gpu split: measured rates give the rows that make the link and the host finish together") {
    for (const auto compression : {runner::Compression::none, runner::Compression::q8, runner::Compression::q4}) {
        CAPTURE(std::string(runner::compression_name(compression)));
        const ShapeModel m(qwen7b);
        auto o = options(4 * GiB, compression);
        o.host_share = -1;
        const auto p = plan(m, o);
        const auto candidates = runner::split_candidates(p, m.weights);
        REQUIRE_FALSE(candidates.empty());
        const auto layout =
            runner::layout_of(m.weights.layers[static_cast<std::size_t>(candidates.front())], compression);
        using namespace runner::layer_slot;
        const double row_bytes =
            static_cast<double>(layout.size[w_gate] + layout.size[w_up] + layout.size[w_down]) / m.config.n_ff;
        for (const auto& [copy, host] : {std::pair{50e9, 50e9}, std::pair{55e9, 80e9}, std::pair{25e9, 120e9}}) {
            CAPTURE(copy);
            CAPTURE(host);
            const auto d = runner::decide_split(p, m.weights, m.config, candidates, {copy, host});
            CHECK(d.rates.copy == copy);
            REQUIRE(d.host_rows > 0);
            CHECK((m.config.n_ff - d.host_rows) % runner::split_granule(m.weights.layers.front(), compression) == 0);
            const double gpu_s = (static_cast<double>(layout.bytes) - d.host_rows * row_bytes) / copy;
            const double host_s = d.host_rows * row_bytes / host;
            // Within one granule of rows of the balance.
            CHECK(std::abs(gpu_s - host_s) <=
                  runner::split_granule(m.weights.layers.front(), compression) * row_bytes * (1 / copy + 1 / host));
        }
        // A host far slower than the link gets no rows, and nothing splits.
        const auto slow = runner::decide_split(p, m.weights, m.config, candidates, {50e9, 1e6});
        CHECK(slow.host_rows == 0);
        CHECK(std::count(slow.split.begin(), slow.split.end(), true) == 0);
    }
}

TEST_CASE("gpu split: what the link copies while the host waits takes rows from the host, as far as the ring holds") {
    using namespace runner::layer_slot;
    const ShapeModel m(qwen7b);
    for (const bool disk : {false, true}) {
        CAPTURE(disk);
        auto o = options(4 * GiB);
        o.host_share = -1;
        if (disk) o.ram_budget = 8 * GiB;
        const auto p = plan(m, o);
        REQUIRE((p.disk_bytes > 0) == disk);
        const auto candidates = runner::split_candidates(p, m.weights);
        REQUIRE_FALSE(candidates.empty());
        const auto& first = m.weights.layers[static_cast<std::size_t>(candidates.front())];
        const auto layout = runner::layout_of(first, runner::Compression::none);
        const double layer = static_cast<double>(layout.bytes), n = static_cast<double>(candidates.size());
        const double row_bytes =
            static_cast<double>(layout.size[w_gate] + layout.size[w_up] + layout.size[w_down]) / m.config.n_ff;
        const double granule = runner::split_granule(first, runner::Compression::none);
        const double copy = 50e9, host = 80e9;
        const auto decide = [&](double alone, double wait) {
            return runner::decide_split(p, m.weights, m.config, candidates, {copy, host, alone, wait});
        };
        const auto gpu_part = [&](const runner::SplitDecision& d) { return layer - d.host_rows * row_bytes; };
        // What the link must have copied ahead for the step's n GPU parts to take as long as the host's n
        // waits and rows.
        const auto ahead = [&](const runner::SplitDecision& d) {
            return n * gpu_part(d) - copy * n * (d.rates.split_wait + d.host_rows * row_bytes / host);
        };
        const double one_granule = copy * n * granule * row_bytes * (1 / copy + 1 / host);

        const auto none = decide(0, 0);
        CHECK(std::abs(ahead(none)) <= one_granule);
        // A window the ring holds: all of it copied ahead, the host gets fewer rows.
        const auto window = decide(0.002, 0);
        CHECK(window.rates.gpu_alone == 0.002);
        CHECK(window.host_rows < none.host_rows);
        CHECK(std::abs(ahead(window) - 0.002 * copy) <= one_granule);
        // Each split layer's wait takes rows from the host too.
        const auto waits = decide(0.002, 50e-6);
        CHECK(waits.host_rows < window.host_rows);
        CHECK(std::abs(ahead(waits) - 0.002 * copy) <= one_granule);
        // A window longer than the ring holds: more of it changes nothing, the waits still count, and the
        // link is never counted on for more parts ahead than the ring holds.
        const auto capped = decide(10, 0);
        CHECK(capped.host_rows == decide(100, 0).host_rows);
        CHECK(capped.host_rows < window.host_rows);
        CHECK(decide(10, 50e-6).host_rows < capped.host_rows);
        CHECK(capped.cut_ring == !disk);
        const double ring = static_cast<double>(p.ring_slots) * static_cast<double>(p.slot_bytes);
        const double parts = disk ? p.ring_slots : std::floor(ring / gpu_part(capped));
        CHECK(ahead(capped) <= parts * gpu_part(capped) + one_granule);
        // Whole slots, one part each, where the ring is not cut: that many exactly.
        if (disk) CHECK(std::abs(ahead(capped) - parts * gpu_part(capped)) <= one_granule);
    }
}

TEST_CASE("gpu split: the load log says what was decided and from which rates") {
    const ShapeModel m(llama8b);
    auto o = options(4 * GiB);
    o.host_share = -1;
    const auto p = plan(m, o);
    const auto candidates = runner::split_candidates(p, m.weights);
    REQUIRE_FALSE(candidates.empty());
    const auto d = runner::decide_split(p, m.weights, m.config, candidates, {52.1e9, 81.3e9, 0.0021, 45e-6});
    REQUIRE(d.host_rows > 0);
    const auto said = runner::describe_split(d, m.config.n_ff);
    CAPTURE(said);
    const auto percent = static_cast<int>(std::lround(100.0 * d.host_rows / m.config.n_ff));
    CHECK(said.find("split " + std::to_string(candidates.size()) + " streamed layers") != std::string::npos);
    CHECK(said.find("computes " + std::to_string(d.host_rows) + " of 14336 MLP rows (" + std::to_string(percent) +
                    "%)") != std::string::npos);
    CHECK(said.find("52.1 GB/s over the link and 81.3 GB/s for an MLP on the host") != std::string::npos);
    CHECK(said.find("2.10 ms a step and 45 us a split layer") != std::string::npos);
    // Too slow a host: nothing splits, and the log says why with the rates.
    const auto slow =
        runner::describe_split(runner::decide_split(p, m.weights, m.config, candidates, {50e9, 1e6}), m.config.n_ff);
    CHECK(slow.rfind("decode steps split no layer (load measured", 0) == 0);
    auto fixed = p;
    fixed.host_share = 25;
    const auto asked =
        runner::describe_split(runner::decide_split(fixed, m.weights, m.config, candidates, {}), m.config.n_ff);
    CHECK(asked.find("(25%), as --host-share asks") != std::string::npos);
    CHECK(asked.find("GB/s") == std::string::npos);
    // Nothing could split (every layer resident): nothing to say.
    CHECK(runner::describe_split(runner::decide_split(p, m.weights, m.config, {}, {}), m.config.n_ff).empty());
}

TEST_CASE("gpu plan: a GGUF model's blocks are widened for the BLAS in scratch the plan counts") {
    ShapeModel m(llama8b);
    const auto bf16 = plan(m, options(4 * GiB));
    CHECK_FALSE(bf16.widens_weights);
    for (const auto& l : m.weights.layers) const_cast<runner::TensorView&>(*l.w_down).dtype = runner::DType::q6_k;
    const auto blocks = plan(m, options(4 * GiB));
    CHECK(blocks.widens_weights);
    CHECK(blocks.fixed_bytes == bf16.fixed_bytes + 2 * runner::largest_projection(m.config));
}
