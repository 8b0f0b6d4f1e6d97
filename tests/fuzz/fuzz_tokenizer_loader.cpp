// libFuzzer target: bytes → Tokenizer::parse as tokenizer.json; a tokenizer that loads must also
// encode and decode. Build with clang:
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DOAR_FUZZ=ON -DOAR_BUILD_TESTS=OFF \
//         -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined
//   cmake --build build-fuzz --target fuzz_tokenizer_loader
//   build-fuzz/src/runner/fuzz_tokenizer_loader -max_total_time=300 -max_len=4096 tests/fuzz/tokenizer_corpus
// The ctest "tokenizer loader: the fuzzing corpus loads or fails cleanly" replays the corpus.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runner/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto tok = tokenizer::Tokenizer::parse(text, "fuzz.json");
    if (!tok) return 0;
    const auto ids = tok->encode("Hello w\xC3\xB6rld 123 <s> \xF0\x9F\x98\x80 \xFF", true);
    (void)tok->decode(ids);
    return 0;
}
