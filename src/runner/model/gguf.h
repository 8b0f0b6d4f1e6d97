// GGUF files (versions 2 and 3: what llama.cpp writes and `ollama pull` stores), validated before any
// tensor byte is used: the magic and version; counts the file's size could hold; every string and
// array inside the file; metadata of known value types; tensors of at most four dimensions whose byte
// size follows from their type's block layout; offsets aligned to general.alignment, inside the data
// section, and no two tensors overlapping. A failure names the file and what is wrong with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/model/mapped_file.h"

namespace runner {

// Metadata value types, as GGUF numbers them.
enum class GgufType : std::uint32_t {
    uint8 = 0,
    int8 = 1,
    uint16 = 2,
    int16 = 3,
    uint32 = 4,
    int32 = 5,
    float32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    uint64 = 10,
    int64 = 11,
    float64 = 12,
};

// A metadata value, or an array of values of one type (GGUF's arrays of arrays are refused: no model
// writes them). Integers and flags land in `integers`, floats in `reals`, strings in `strings`.
struct GgufValue {
    GgufType type = GgufType::uint8;  // the value's, or an array's elements'
    bool is_array = false;
    std::vector<std::int64_t> integers;
    std::vector<double> reals;
    std::vector<std::string> strings;
};

// ggml's tensor types that a GGUF file may hold: a block of `block_elements` weights takes `block_bytes`.
struct GgmlType {
    std::uint32_t id;
    const char* name;  // "Q4_K", as llama.cpp names it
    std::size_t block_elements, block_bytes;
};
// nullptr for a type id this reader does not know.
const GgmlType* ggml_type(std::uint32_t id);

struct GgufTensor {
    std::string name;
    const GgmlType* type = nullptr;
    std::vector<std::int64_t> dims;  // ggml's order: dims[0] is the length of a row
    std::size_t offset = 0;          // from the start of the file
    std::size_t bytes = 0;
};

struct GgufHeader {
    std::uint32_t version = 0;
    std::map<std::string, GgufValue> metadata;
    std::vector<GgufTensor> tensors;  // in the file's order
    std::size_t alignment = 32;
    std::size_t data_start = 0;

    const GgufValue* find(const std::string& key) const;
    // A scalar of the right kind under `key`; nullopt when absent or of another kind.
    std::optional<std::int64_t> integer(const std::string& key) const;
    std::optional<double> real(const std::string& key) const;
    std::optional<std::string> string(const std::string& key) const;
};

// Parses and validates a whole GGUF file's bytes. `file` names it in messages.
common::Result<GgufHeader> parse_gguf(std::span<const std::byte> bytes, const std::string& file);

class GgufFile {
  public:
    static common::Result<GgufFile> open(const std::filesystem::path& path);

    const GgufHeader& header() const { return header_; }
    const MappedFile& mapping() const { return *mapping_; }
    std::span<const std::byte> data(const GgufTensor& tensor) const {
        return mapping_->bytes().subspan(tensor.offset, tensor.bytes);
    }

  private:
    std::unique_ptr<MappedFile> mapping_;  // stable address for views into it
    GgufHeader header_;
};

}  // namespace runner
