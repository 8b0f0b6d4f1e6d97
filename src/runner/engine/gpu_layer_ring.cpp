#include "runner/engine/gpu_layer_ring.h"

#include <algorithm>

namespace runner {

LayerRing::LayerRing(int slots, std::size_t slot_bytes, std::size_t staging_bytes)
    : ring_(static_cast<std::size_t>(slots) * slot_bytes), slot_bytes_(slot_bytes), slots_(slots) {
    for (int s = 0; s < slots; ++s) {
        copied_.emplace_back();
        freed_.emplace_back();
        if (staging_bytes > 0) {
            staging_.emplace_back(staging_bytes);
            staged_.emplace_back();
        }
    }
}

void LayerRing::configure(std::vector<RingLayer> layers, RingDiskReader disk, std::size_t decode_slot_bytes) {
    layers_ = std::move(layers);
    disk_ = std::move(disk);
    decode_slot_bytes_ = decode_slot_bytes;
    if (decode_slot_bytes_ == 0) return;
    const std::size_t most_slots = static_cast<std::size_t>(slots_) * slot_bytes_ / decode_slot_bytes_;
    while (copied_.size() < most_slots) {
        copied_.emplace_back();
        freed_.emplace_back();
    }
}

std::optional<common::Error> LayerRing::begin(bool decode) {
    decode_parts_ = !layers_.empty() && decode && decode_slot_bytes_ > 0;
    if (layers_.empty()) return std::nullopt;
    bytes_now_ = decode_parts_ ? decode_slot_bytes_ : slot_bytes_;
    slots_now_ = static_cast<std::size_t>(slots_) * slot_bytes_ / bytes_now_;
    // Layers from disk are read by the host synchronously: none of them is started a step early.
    prefetch_ = decode && staging_.empty();
    if (!decode || prefetched_ == 0) {
        prefetched_ = 0;
        head_ = 0;
    }
    prefetching_ = 0;
    for (std::size_t i = prefetched_; i < std::min(slots_now_, layers_.size()); ++i)
        if (auto error = issue_copy(i, false)) return error;
    return std::nullopt;
}

const std::byte* LayerRing::wait_for(std::size_t i, const gpu::Stream& compute) {
    const std::size_t slot = slot_of(i);
    copied_[slot].wait_in(compute);
    const auto& layer = layers_[i];
    bytes_copied_ += decode_parts_ ? layer.decode_bytes : layer.bytes;
    return ring_.as<std::byte>() + slot * bytes_now_;
}

std::optional<common::Error> LayerRing::done_with(std::size_t i, const gpu::Stream& compute) {
    freed_[slot_of(i)].record(compute);
    const std::size_t next = i + slots_now_, n = layers_.size();
    if (next < n) return issue_copy(next, true);
    // The next step's streamed layer `prefetching_`, into the same slot. A ring longer than the streamed
    // layers (a few small ones) never starts the next step's layers in order: none then.
    if (prefetch_ && next - n == prefetching_) {
        ++prefetching_;
        return issue_copy(next, true);
    }
    return std::nullopt;
}

void LayerRing::end() {
    if (layers_.empty()) return;
    head_ = slot_of(layers_.size());
    prefetched_ = prefetching_;
}

// Streamed layer i of this pass (i >= the layer count: the next pass's) into its slot, once the layer
// that used the slot before (in this pass or, for prefetched ones, the last) is done with it.
std::optional<common::Error> LayerRing::issue_copy(std::size_t i, bool after_use) {
    const std::size_t slot = slot_of(i), n = layers_.size();
    const auto& layer = layers_[i % n];
    const std::byte* from = layer.pinned;
    if (!from) {
        // From disk: the host reads the layer into this slot's staging buffer (its last copy out is long
        // done) while the GPU works on earlier layers.
        staged_[slot].synchronize();
        if (auto error = disk_.read(i % n, staging_[slot].data())) return error;
        if (i + 1 < n) disk_.will_need(i + 1);
        from = staging_[slot].data();
    }
    if (after_use) freed_[slot].wait_in(copy_);
    gpu::copy_to_device(ring_.as<std::byte>() + slot * bytes_now_, from,
                        decode_parts_ ? layer.decode_bytes : layer.bytes, copy_);
    copied_[slot].record(copy_);
    if (!layer.pinned) staged_[slot].record(copy_);
    return std::nullopt;
}

void LayerRing::settle() noexcept {
    try {
        copy_.synchronize();
    } catch (const gpu::Error&) {
        // the device failed: nothing is left running to wait for
    }
    prefetched_ = 0;
    head_ = 0;
}

}  // namespace runner
