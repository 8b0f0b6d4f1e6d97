# Thin wrapper over CMake. `make`, `make check`, `make install DESTDIR=... PREFIX=/usr`.
BUILD_DIR    ?= build
SAN_DIR      ?= build-sanitize
PREFIX       ?= /usr/local
BUILD_TYPE   ?= RelWithDebInfo
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE        ?= cmake
CMAKE_FLAGS  ?=

.PHONY: all configure check check-sanitize recipe-check ci install bench format format-check clean

all: configure
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

configure:
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

check: all
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer, in their own build folder.
# The makepkg round trip builds with makepkg's own flags, so it runs once, in `check`.
check-sanitize:
	$(CMAKE) -S . -B $(SAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DOAR_SANITIZE=ON $(CMAKE_FLAGS)
	$(CMAKE) --build $(SAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(SAN_DIR) --output-on-failure -j $(JOBS) -LE roundtrip

# The committed PKGBUILD and companions are exactly what templates/ and the YAML config give.
recipe-check: all
	$(BUILD_DIR)/src/pkg/ollama-pkg generate --check

# Everything the README's test command promises: the tests, the recipe check, the tests under sanitizers.
ci: check recipe-check check-sanitize

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
