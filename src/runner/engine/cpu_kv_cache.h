// The CPU engine's keys and values, grown with the positions used rather than allocated for the whole
// context: Ollama asks for 32,768 positions on a 24 GB card and 262,144 on larger ones, whatever the
// conversation's length, and a cache allocated whole at f32 would take gigabytes from the first request.
#pragma once

#include <cstddef>
#include <vector>

namespace runner {

class CpuKvCache {
  public:
    // `row`: floats per position and layer (n_head_kv * head_dim); `n_ctx`: the most positions it holds.
    CpuKvCache(int n_layer, std::size_t row, int n_ctx);

    // Makes positions [0, n) of every layer writable, keeping what they hold. Capacity doubles (from
    // min_positions) so that a conversation copies its cache a logarithmic number of times; never past
    // n_ctx.
    void reserve(int n);

    // A layer's [capacity, row] keys or values; valid until the next reserve().
    float* keys(int layer) { return keys_[static_cast<std::size_t>(layer)].data(); }
    float* values(int layer) { return values_[static_cast<std::size_t>(layer)].data(); }

    int capacity() const { return capacity_; }
    std::size_t bytes() const;

    static constexpr int min_positions = 256;

  private:
    std::size_t row_;
    int n_ctx_;
    int capacity_ = 0;
    std::vector<std::vector<float>> keys_, values_;  // [n_layer][capacity * row]
};

}  // namespace runner
