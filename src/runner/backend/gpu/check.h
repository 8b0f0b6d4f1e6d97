// Runtime calls checked with the call, file and line; a failure throws gpu::Error, so it fails the
// request that made it, not the process.
#pragma once

#include <string>

#include "runner/backend/gpu/backend.h"
#include "runner/backend/gpu/vendor.h"

#define GPU_CHECK(call)                                                                                          \
    do {                                                                                                         \
        const cudaError_t gpu_check_status_ = (call);                                                            \
        if (gpu_check_status_ != cudaSuccess) {                                                                  \
            /* A failed call also sets the runtime's last error; clear it so that the next launch */             \
            /* check does not report it again. */                                                                \
            (void)cudaGetLastError();                                                                            \
            throw ::runner::gpu::Error(std::string(#call) + " failed at " + __FILE__ + ":" +                     \
                                       std::to_string(__LINE__) + ": " + cudaGetErrorString(gpu_check_status_)); \
        }                                                                                                        \
    } while (0)

// After a kernel launch: launch errors (bad configuration) surface here, not at the next sync.
#define GPU_CHECK_LAUNCH() GPU_CHECK(cudaGetLastError())
