// What the kernel files share: the stream handle, and reading a weight element of any stored dtype.
#pragma once

#include "runner/backend/gpu/backend.h"
#include "runner/backend/gpu/check.h"
#include "runner/backend/gpu/vendor.h"

namespace runner::gpu {

inline cudaStream_t native(const Stream& s) { return static_cast<cudaStream_t>(s.handle()); }

#if defined(__CUDACC__) || defined(__HIPCC__)
__device__ inline float load_weight(const void* w, WeightType type, std::size_t i) {
    switch (type) {
        case WeightType::bf16: return bf16_to_f32(static_cast<const unsigned short*>(w)[i]);
        case WeightType::f16: return f16_to_f32(static_cast<const unsigned short*>(w)[i]);
        default: return static_cast<const float*>(w)[i];
    }
}
#endif

}  // namespace runner::gpu
