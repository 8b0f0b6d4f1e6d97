// The GPU tests' main: with no GPU (CI) they cannot run, and say so with ctest's skip status rather
// than passing.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "runner/backend/gpu/backend.h"

int main(int argc, char** argv) {
    if (runner::gpu::device_count() == 0) {
        std::puts("no GPU here: the GPU tests are skipped");
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
