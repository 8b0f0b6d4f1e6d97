// Normalizers of tokenizer.json: NFC, Prepend, Replace and Sequence. Any other type is refused at
// load with its name, rather than tokenizing differently from Hugging Face.
#pragma once

#include <memory>
#include <string>

#include "runner/tokenizer/json_view.h"

namespace tokenizer {

class Normalizer {
  public:
    virtual ~Normalizer() = default;
    virtual void normalize(std::string& text) const = 0;
};

using NormalizerPtr = std::unique_ptr<const Normalizer>;

// Null JSON gives a null pointer (no normalization). Throws SchemaError.
NormalizerPtr parse_normalizer(const JsonView& json);

// Unicode NFC through ICU (exposed for tests).
std::string nfc(const std::string& text);

}  // namespace tokenizer
