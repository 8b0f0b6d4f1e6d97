// Ollama's blobs are named by the SHA-256 of their content: a blob whose content no longer has that
// digest (damaged, or tampered with) must not run. Hashing 140 GB on every load would cost minutes,
// so a blob checked once is remembered by its device, inode, size and modification time.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>

#include "common/result.h"
#include "runner/model/ollama_manifest.h"

namespace runner {

struct BlobCheck {
    std::size_t hashed = 0;      // blobs whose content was hashed now
    std::size_t remembered = 0;  // blobs a record says were checked, unchanged since
};

// Every blob of `manifest` against its digest; records of checked blobs live in `records`. With
// `all`, records are ignored and every blob is hashed. `progress` gets bytes hashed and bytes to hash.
// An error names the blob, the layer and the manifest.
common::Result<BlobCheck> check_blob_digests(const OllamaManifest& manifest, const std::filesystem::path& records,
                                             bool all,
                                             const std::function<void(std::uint64_t, std::uint64_t)>& progress);

}  // namespace runner
