# Thin wrapper over CMake. `make`, `make check`, `make install DESTDIR=... PREFIX=/usr`.
BUILD_DIR    ?= build
SAN_DIR      ?= build-sanitize
PREFIX       ?= /usr/local
BUILD_TYPE   ?= RelWithDebInfo
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE        ?= cmake
CMAKE_FLAGS  ?=

.PHONY: all configure check check-sanitize recipe-check hip-check cuda-check e2e ci install bench format format-check clean

all: configure
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

configure:
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

check: all
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -LE e2e

# The patched upstream Ollama, built from its Go module (go vet and upstream's tests of the packages
# the patch touches included), driven end to end with this build's runner by the ollama CLI, its API,
# the OpenAI API, the ollama JS library and opencode.
e2e: all
	tools/build-ollama --check --out $(BUILD_DIR)/ollama-dist --runner $(BUILD_DIR)/src/runner/ollama-airllm
	ctest --test-dir $(BUILD_DIR) --output-on-failure -L e2e

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer, in their own build folder.
# The makepkg round trip builds with makepkg's own flags, so it runs once, in `check`.
check-sanitize:
	$(CMAKE) -S . -B $(SAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DOAR_SANITIZE=ON -DOAR_GPU=off $(CMAKE_FLAGS)
	$(CMAKE) --build $(SAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(SAN_DIR) --output-on-failure -j $(JOBS) -LE 'roundtrip|e2e'

# The committed PKGBUILD and companions are exactly what templates/ and the YAML config give.
recipe-check: all
	$(BUILD_DIR)/src/pkg/ollama-pkg generate --check

# The GPU sources through hipcc (Debian 12's is ROCm 5.2, whose CMake files CMake's HIP language cannot
# find): compiled and linked for gfx1030 with the plain C++ they call (every symbol resolved), and device
# code compiled for gfx1100, the reference card.
# The CUDA side is built by `make` itself whenever nvcc is found.
HIPCC        ?= hipcc
HIP_FLAGS     = -x hip -std=c++20 -I src -Wall -Wextra -Werror -Wno-unused-command-line-argument
GPU_SOURCES   = $(sort $(wildcard src/runner/backend/gpu/*.cu))
GPU_HOST_CXX  = src/runner/backend/gpu/rocblas_choice.cpp src/common/rocblas_library.cpp
# The GPU engine's plain C++, the GPU tests and benchmarks, which only a GPU build compiles: checked here with the
# project's warnings, so that CI catches what the GPU host would refuse to build.
GPU_ENGINE_CXX = $(sort $(wildcard src/runner/engine/gpu_*.cpp)) src/runner/engine/engine_factory.cpp \
                 src/runner/engine/device_selftest.cpp src/runner/selftest/gpu_checks.cpp \
                 $(sort $(wildcard tests/runner/gpu/*.cpp)) bench/bench_conversation.cpp \
                 bench/bench_decode_kernels.cpp bench/bench_offload.cpp src/runner/selftest/gpu_bandwidth.cpp
CXX_WARNINGS   = -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Werror
HIP_OUT       = $(BUILD_DIR)/hip-check

hip-check:
	mkdir -p $(HIP_OUT)
	$(HIPCC) $(HIP_FLAGS) --offload-arch=gfx1030 -fPIC -shared $(GPU_SOURCES) -x none $(GPU_HOST_CXX) \
		-Wl,--no-undefined -ldl -o $(HIP_OUT)/librunner_gpu_gfx1030.so
	nm -C --defined-only $(HIP_OUT)/librunner_gpu_gfx1030.so | grep -q 'runner::gpu::attention('
	for f in $(GPU_SOURCES); do \
		$(HIPCC) $(HIP_FLAGS) --offload-arch=gfx1100 -nogpulib --offload-device-only -S $$f \
			-o $(HIP_OUT)/$$(basename $$f .cu).gfx1100.s || exit 1; \
	done
	for f in $(GPU_ENGINE_CXX); do \
		$(CXX) -std=c++20 -fsyntax-only $(CXX_WARNINGS) -I src -I tests -I bench -DOAR_HAVE_GPU=1 -DOAR_FIXTURES='""' $$f || exit 1; \
	done
	@echo "hip-check: $(words $(GPU_SOURCES)) GPU sources linked for gfx1030 and compiled for gfx1100;" \
		"$(words $(GPU_ENGINE_CXX)) files of GPU engine and tests compiled with the project's warnings"

# The same GPU sources through nvcc, as a GPU host's `OAR_GPU=cuda` build compiles them (its flags, sm_90),
# with NVIDIA's compiler from PyPI (tools/fetch-nvcc): nvcc's front end refuses some C++ that g++ and
# clang take (an implicit move into a Result, found on a GPU host once).
CUDA_ROOT    ?= $(BUILD_DIR)/cuda-toolchain
CUDA_OUT      = $(BUILD_DIR)/cuda-check
CUDA_FLAGS    = -std=c++20 -arch=sm_90 -I src -Werror=all-warnings -Xcompiler=-Wall,-Wextra --expt-relaxed-constexpr \
                -DOAR_GPU_BLAS=1

cuda-check:
	tools/fetch-nvcc $(CUDA_ROOT)
	mkdir -p $(CUDA_OUT)
	for f in $(GPU_SOURCES); do \
		$(CUDA_ROOT)/bin/nvcc $(CUDA_FLAGS) -c $$f -o $(CUDA_OUT)/$$(basename $$f .cu).o || exit 1; \
	done
	@echo "cuda-check: $(words $(GPU_SOURCES)) GPU sources compiled by nvcc $$($(CUDA_ROOT)/bin/nvcc --version | \
		sed -n 's/.*release \([0-9.]*\).*/\1/p') for sm_90"

# Everything the README's test command promises: the tests, the recipe check, the HIP and CUDA compile
# checks, the patched Ollama end to end, the tests under sanitizers.
ci: check recipe-check hip-check cuda-check e2e check-sanitize

install: all
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD_DIR) --prefix "$(PREFIX)"

bench: all
	$(BUILD_DIR)/bench/bench_probe
	$(BUILD_DIR)/bench/bench_tokenizer
	$(BUILD_DIR)/bench/bench_cpu_decode
	$(BUILD_DIR)/bench/bench_stream_decode

FORMAT_FILES = $(shell git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' 2>/dev/null)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR)
