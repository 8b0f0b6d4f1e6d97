#include "runner/engine/gpu_split_timing.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "runner/backend/cpu/ops.h"

namespace runner {

using namespace layer_slot;

common::Result<SplitRates> time_split(const SplitTiming& t, const std::vector<int>& candidates) {
    const std::size_t e = static_cast<std::size_t>(t.config.n_embd), n_ff = static_cast<std::size_t>(t.config.n_ff);
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
        const LayerWeights& l = t.weights.layers[layer];
        Mlp& mlp = timed.emplace_back();
        if (t.compression == Compression::none) {
            mlp.gate = *l.w_gate;
            mlp.up = *l.w_up;
            mlp.down = *l.w_down;
            continue;
        }
        const auto layout = layout_of(l, t.compression);
        mlp.slab.resize(layout.bytes);
        if (auto error = t.slab(mlp.slab.data(), layer, layout)) return *error;
        const auto matrix = [&](Slot s, const TensorView& w, std::size_t rows, std::size_t cols) {
            return slab_matrix(mlp.slab.data() + layout.offset[s], layout.type[s], w.dtype, rows, cols);
        };
        mlp.gate = matrix(w_gate, *l.w_gate, n_ff, e);
        mlp.up = matrix(w_up, *l.w_up, n_ff, e);
        mlp.down = matrix(w_down, *l.w_down, e, n_ff);
    }
    const std::size_t layer_bytes =
        layout_of(t.weights.layers[static_cast<std::size_t>(candidates.front())], t.compression).bytes;
    const std::size_t probe_bytes = std::min<std::size_t>(layer_bytes, std::size_t{64} << 20);
    const gpu::PinnedBuffer probe(probe_bytes);
    std::vector<float> x(e, 0.01f), g(n_ff), y(e);
    std::size_t round = 0;
    const auto host_round = [&] {
        const Mlp& mlp = timed[round++ % timed.size()];
        const auto t0 = std::chrono::steady_clock::now();
        cpu::swiglu_matmul(g.data(), mlp.gate, mlp.up, x.data(), 1, t.pool);
        cpu::matmul(y.data(), g.data(), mlp.down, nullptr, 1, t.pool);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    for (std::size_t i = 0; i < timed.size(); ++i) host_round();  // may read from the disk: not a rate
    const double round_alone = std::min(host_round(), host_round());
    gpu::Event start(true), stop(true);
    const auto copy_window = [&](int copies) {
        start.record(t.copy);
        for (int i = 0; i < copies; ++i) gpu::copy_to_device(t.device_slot, probe.data(), probe_bytes, t.copy);
        stop.record(t.copy);
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

}  // namespace runner
