#include "runner/engine/cpu_kv_cache.h"

#include <algorithm>

namespace runner {

CpuKvCache::CpuKvCache(int n_layer, std::size_t row, int n_ctx)
    : row_(row), n_ctx_(n_ctx), keys_(static_cast<std::size_t>(n_layer)), values_(static_cast<std::size_t>(n_layer)) {}

void CpuKvCache::reserve(int n) {
    if (n <= capacity_) return;
    capacity_ = std::min(n_ctx_, std::max({n, 2 * capacity_, min_positions}));
    const std::size_t floats = static_cast<std::size_t>(capacity_) * row_;
    for (auto& layer : keys_) layer.resize(floats);
    for (auto& layer : values_) layer.resize(floats);
}

std::size_t CpuKvCache::bytes() const {
    return 2 * keys_.size() * static_cast<std::size_t>(capacity_) * row_ * sizeof(float);
}

}  // namespace runner
