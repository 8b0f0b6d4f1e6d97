// Measuring what a split decode step will see: the link's copies and the host's MLP rows, at once.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "common/result.h"
#include "runner/backend/cpu/thread_pool.h"
#include "runner/backend/gpu/backend.h"
#include "runner/offload/gpu_plan.h"
#include "runner/offload/layer_slab.h"

namespace runner {

// A layer's whole slab as `layout` lays it out, into `dst` (from the layer cache or made from the weights).
using SlabMaker = std::function<std::optional<common::Error>(std::byte* dst, std::size_t layer, const LayerLayout&)>;

struct SplitTiming {
    const ModelWeights& weights;
    const ModelConfig& config;
    Compression compression;
    const SlabMaker& slab;
    std::byte* device_slot;  // where the timed copies go: a ring slot, at least 64 MiB or a layer
    const gpu::Stream& copy;
    cpu::ThreadPool& pool;
};

// The link's and the host's rates for decide_split, in bytes per second, timed at once as a decode step runs them: the
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
common::Result<SplitRates> time_split(const SplitTiming& timing, const std::vector<int>& candidates);

}  // namespace runner
