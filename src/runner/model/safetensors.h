// Safetensors files, validated before any byte of a tensor is used: an 8-byte little-endian header
// length (bounded), a JSON header whose every tensor has a known dtype, a shape whose element count
// matches its byte range, and a range inside the data section that overlaps no other tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/model/mapped_file.h"

namespace runner {

// How a tensor's numbers are stored. Safetensors holds the element types; GGUF also holds ggml's
// block-quantized types, whose rows are runs of blocks (a scale or two and packed quants for 32 or 256
// weights: backend/cpu/block_quants.h) read in place.
enum class DType { f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k };

const char* dtype_name(DType dtype);  // "BF16", "Q4_K": as safetensors and llama.cpp name them
std::size_t dtype_size(DType dtype);  // an element type's bytes; 0 for block types
bool is_block_type(DType dtype);
std::size_t block_elements(DType dtype);  // weights per block; 1 for element types
std::size_t block_bytes(DType dtype);     // bytes per block; an element's for element types
// Bytes of a row of n weights, n a multiple of block_elements(dtype).
inline std::size_t row_bytes(DType dtype, std::size_t n) { return n / block_elements(dtype) * block_bytes(dtype); }

// A view of one tensor's bytes inside a mapping; it does not own them.
struct TensorView {
    std::string name;
    DType dtype = DType::f32;
    std::vector<std::int64_t> shape;
    const std::byte* data = nullptr;
    std::size_t bytes = 0;
    std::size_t file_offset = 0;  // from the start of the file (for madvise)
    const MappedFile* file = nullptr;

    std::int64_t numel() const;
    std::string shape_string() const;  // "[64, 384]"
};

struct SafetensorsHeader {
    std::vector<TensorView> tensors;  // data pointers relative to nullptr until bound to a mapping
    std::map<std::string, std::string> metadata;
    std::size_t data_start = 0;  // 8 + header length
};

// Parses and validates the header of a file of `file_size` bytes whose first bytes are `prefix`
// (at least 8 + header length of them). `file` names the file in messages.
common::Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> prefix, std::size_t file_size,
                                                           const std::string& file);

class SafetensorsFile {
  public:
    static common::Result<SafetensorsFile> open(const std::filesystem::path& path);

    const std::vector<TensorView>& tensors() const { return tensors_; }
    const MappedFile& mapping() const { return *mapping_; }

  private:
    std::unique_ptr<MappedFile> mapping_;  // stable address: views point at it
    std::vector<TensorView> tensors_;
};

}  // namespace runner
