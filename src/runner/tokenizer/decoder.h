// Decoders of tokenizer.json: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace and
// Sequence. Each maps the list of token strings to a new list, as Hugging Face's decode_chain; the
// tokenizer joins the result.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runner/tokenizer/json_view.h"

namespace tokenizer {

class Decoder {
  public:
    virtual ~Decoder() = default;
    virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

using DecoderPtr = std::unique_ptr<const Decoder>;

// Null JSON gives a null pointer (tokens joined with spaces, as Hugging Face does). Throws SchemaError.
DecoderPtr parse_decoder(const JsonView& json);

// The byte a SentencePiece byte-fallback token "<0xNN>" stands for; -1 for any other token.
int byte_fallback_byte(std::string_view token);

}  // namespace tokenizer
