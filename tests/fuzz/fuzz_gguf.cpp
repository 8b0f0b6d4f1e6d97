// libFuzzer target: any bytes as a GGUF file must parse or fail with a message naming the file, never
// crash, hang or read out of bounds; a parsed tensor always lies inside the bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "runner/model/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const auto header = runner::parse_gguf(bytes, "fuzz.gguf");
    if (header.ok()) {
        for (const auto& t : header->tensors)
            if (t.offset < header->data_start || t.offset + t.bytes > size || t.offset % header->alignment != 0)
                __builtin_trap();
    } else if (header.error().message.rfind("fuzz.gguf: ", 0) != 0) {
        __builtin_trap();
    }
    return 0;
}
