// libFuzzer target: any bytes as the start of a safetensors file must parse or fail with a message,
// never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "runner/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const auto header = runner::parse_safetensors_header(bytes, size, "fuzz.safetensors");
    if (header.ok())
        for (const auto& t : header->tensors)
            if (t.file_offset + t.bytes > size) __builtin_trap();  // a range the parser let past the data
    return 0;
}
