// The GPU tests' main: with no GPU (CI) they cannot run, and say so with ctest's skip status rather
// than passing.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>

#include "runner/backend/gpu/backend.h"

int main(int argc, char** argv) {
    if (runner::gpu::device_count() == 0) {
        std::puts("no GPU here: the GPU tests are skipped");
        return 77;
    }
    // The first load's kernel-check records go to a folder of this run's, not the user's cache.
    char cache[] = "/tmp/test_runner_gpu.XXXXXX";
    if (!::mkdtemp(cache)) return 1;
    ::setenv("AIRLLM_CACHE_DIR", cache, 1);
    doctest::Context context(argc, argv);
    return context.run();
}
