// The streamed layers' way onto the GPU: a ring of device slots that a copy stream of its own fills in
// the order the layers run, while the compute stream works on the layer before (events, no host syncs).
// A layer comes from pinned RAM (copied at full link speed) or, beyond the RAM budget, from its files
// through the slot's pinned staging buffer. A decode step may copy only split layers' GPU parts, into a
// ring cut into more, smaller slots, so that the copies run further ahead; and its last layers, which
// free their slots while the link would otherwise idle until the next step, take the next step's first
// layers then.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include "common/result.h"
#include "runner/backend/gpu/backend.h"

namespace runner {

// One streamed layer, in the order the layers run.
struct RingLayer {
    const std::byte* pinned = nullptr;  // its slab in pinned RAM; null: read from disk on every pass
    std::size_t bytes = 0;              // the whole slab
    std::size_t decode_bytes = 0;       // what a decode step copies: a split layer's GPU part, else `bytes`
};

// Reads a disk layer (the index given to configure()) into a staging buffer; `next` may be read ahead.
struct RingDiskReader {
    std::function<std::optional<common::Error>(std::size_t i, std::byte* dst)> read;
    std::function<void(std::size_t next)> will_need;
};

class LayerRing {
  public:
    LayerRing() = default;
    // `slots` device slots of `slot_bytes`; with `staging_bytes` each also gets a pinned staging buffer.
    LayerRing(int slots, std::size_t slot_bytes, std::size_t staging_bytes);

    // The layers it streams, once their slabs are in place; `decode_slot_bytes` (0: none) is the slot a
    // decode step cuts the ring into, at least every layer's decode_bytes.
    void configure(std::vector<RingLayer> layers, RingDiskReader disk, std::size_t decode_slot_bytes);

    // A forward pass starts: the first layers' copies are issued (a previous decode step's prefetch
    // counts when this is one too; otherwise the ring starts over, which is safe because the copy stream
    // runs its copies in order). `decode`: a step short enough to split (gpu_host_max_tokens).
    std::optional<common::Error> begin(bool decode);
    // Whether this pass copies only split layers' GPU parts.
    bool copies_decode_parts() const { return decode_parts_; }
    // The pass's i-th streamed layer in its slot: `compute` waits for its copy.
    const std::byte* wait_for(std::size_t i, const gpu::Stream& compute);
    // `compute` has queued all its work on streamed layer i: its slot takes a later layer.
    std::optional<common::Error> done_with(std::size_t i, const gpu::Stream& compute);
    void end();
    // After a failed pass: the queued copies finish, and the next pass starts the ring afresh.
    void settle() noexcept;

    std::size_t bytes_copied() const { return bytes_copied_; }
    // For measuring the link before the layers are configured: the copy stream and slot 0.
    const gpu::Stream& copy_stream() const { return copy_; }
    std::byte* first_slot() { return ring_.as<std::byte>(); }

  private:
    std::optional<common::Error> issue_copy(std::size_t i, bool after_use);
    std::size_t slot_of(std::size_t i) const { return (head_ + i) % slots_now_; }

    gpu::DeviceBuffer ring_;
    std::size_t slot_bytes_ = 0, decode_slot_bytes_ = 0;
    int slots_ = 0;
    std::vector<gpu::Event> copied_, freed_;  // [the most slots the ring is cut into]
    std::vector<gpu::PinnedBuffer> staging_;  // [slots] when some layers come from disk
    std::vector<gpu::Event> staged_;          // [slots]: the copy out of the staging buffer is done
    gpu::Stream copy_;
    std::vector<RingLayer> layers_;
    RingDiskReader disk_;

    // this pass
    bool decode_parts_ = false, prefetch_ = false;
    std::size_t slots_now_ = 1, bytes_now_ = 0;  // how the ring is cut
    std::size_t prefetching_ = 0;                // the next step's first layers this pass has issued
    // across passes
    std::size_t head_ = 0;        // the slot of this pass's first streamed layer
    std::size_t prefetched_ = 0;  // the next decode step's first layers already on their way
    std::size_t bytes_copied_ = 0;
};

}  // namespace runner
