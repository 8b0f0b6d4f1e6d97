// libFuzzer target: any bytes as an Ollama manifest must give layers whose digests are 64 lowercase hex
// digits (they name blob files), or fail with a message naming the manifest; never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runner/model/ollama_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto entries = runner::parse_ollama_manifest(text, "manifest");
    if (!entries.ok()) {
        if (entries.error().message.rfind("manifest: ", 0) != 0) __builtin_trap();  // a failure names the file
        return 0;
    }
    for (const auto& e : *entries)
        if (e.digest_hex.size() != 64 || e.digest_hex.find_first_not_of("0123456789abcdef") != std::string::npos)
            __builtin_trap();  // a digest that could name a path outside blobs/
    return 0;
}
