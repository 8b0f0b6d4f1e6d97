// What encode() adds around the ids when special tokens are asked for: the tokenizer.json
// post-processor (TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence),
// overridden by tokenizer_config.json's add_bos_token / add_eos_token where those are given.
#pragma once

#include <vector>

#include "runner/tokenizer/json_view.h"
#include "runner/tokenizer/vocab.h"

namespace tokenizer {

struct SpecialTokenFrame {
    std::vector<TokenId> prefix;  // before the text's ids
    std::vector<TokenId> suffix;  // after them
};

// Null JSON gives an empty frame. Throws SchemaError.
SpecialTokenFrame parse_post_processor(const JsonView& json);

}  // namespace tokenizer
