// libFuzzer target: any bytes as a GGUF model must give settings and a tokenizer or an error naming the
// file, never crash or hang: parse_gguf, then gguf_model_config, then the tokenizer.json rebuilt from
// tokenizer.ggml.* and loaded, and a short text through it.
#include <cstddef>
#include <cstdint>
#include <span>

#include "runner/model/gguf.h"
#include "runner/model/gguf_config.h"
#include "runner/tokenizer/gguf_vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const auto header = runner::parse_gguf(bytes, "fuzz.gguf");
    if (!header) return 0;
    if (const auto config = runner::gguf_model_config(*header, "fuzz.gguf");
        !config && config.error().message.rfind("fuzz.gguf: ", 0) != 0)
        __builtin_trap();
    const auto json = tokenizer::gguf_tokenizer_json(*header, "fuzz.gguf");
    if (!json) {
        if (json.error().message.rfind("fuzz.gguf: ", 0) != 0) __builtin_trap();
        return 0;
    }
    const auto tok = tokenizer::Tokenizer::parse(*json, "fuzz.gguf (tokenizer.ggml.*)");
    if (tok) {
        const auto ids = tok->encode("Hello, world! 123 don't\n\tok");
        (void)tok->decode(ids);
    }
    return 0;
}
