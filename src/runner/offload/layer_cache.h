// The compressed-layer cache `ollama-airllm prepare` writes, so that compression is paid once and
// compressed layers can be read straight from disk. One file per layer: a 4 KiB header (what the
// slab holds, a checksum of it) and the slab, 4 KiB-aligned for direct reads. Files are written to a
// temporary name and renamed, so a cache is never half-written; a run that was stopped resumes with
// the layers that are not yet valid.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "runner/offload/layer_slab.h"

namespace runner {

inline constexpr std::size_t cache_header_bytes = 4096;

// $AIRLLM_CACHE_DIR, else $XDG_CACHE_HOME/ollama-airllm, else ~/.cache/ollama-airllm.
std::filesystem::path default_cache_root();

// Names a model's weights: tensor names, dtypes, shapes and each tensor's first bytes, hashed.
std::string model_id(const ModelWeights& weights);

// root / <model id> / <8bit|4bit>
std::filesystem::path cache_dir(const std::filesystem::path& root, const ModelWeights& weights,
                                Compression compression);

std::filesystem::path cache_file(const std::filesystem::path& dir, std::size_t layer);

struct PrepareResult {
    std::size_t written = 0;  // layers compressed now
    std::size_t kept = 0;     // layers already valid in the cache
};

// Writes every layer that is not already valid in `dir`; progress(done, total) in layers.
common::Result<PrepareResult> prepare_cache(const ModelWeights& weights, Compression compression,
                                            const std::filesystem::path& dir,
                                            const std::function<void(std::size_t done, std::size_t total)>& progress);

// Reads layer `layer`'s slab into `dst` (layout.bytes), checking that the file holds that layout and,
// with `verify`, its checksum. The error names the file and what is wrong with it.
std::optional<common::Error> read_cached_layer(const std::filesystem::path& dir, std::size_t layer,
                                               const LayerLayout& layout, Compression compression, std::byte* dst,
                                               bool verify);

// Whether every layer has a file whose header matches (checksums are not read).
bool cache_complete(const std::filesystem::path& dir, const ModelWeights& weights, Compression compression);

}  // namespace runner
