// libFuzzer target: any bytes as a completion request body (either dialect) must parse or fail with
// a message, never crash, recurse out of stack or hang; a format it carries must give a matcher that
// follows the prompt's bytes as its next-byte sets say.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runner/server/completion_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto request = runner_server::parse_completion_request(body);
    if (!request.ok() && request.error().message.empty()) __builtin_trap();  // a failure must say why
    if (request.ok() && request->completion.sampling.top_p > 1)
        __builtin_trap();  // a range check that let a value past
    // A format's grammar must build a matcher and follow any bytes: the prompt's, one at a time.
    if (request.ok() && request->completion.format) {
        runner::grammar::Matcher matcher(*request->completion.format);
        try {
            for (const char c : request->prompt) {
                const bool next = matcher.first_bytes()[static_cast<std::uint8_t>(c)];
                if (matcher.accept({&c, 1}) != next) __builtin_trap();  // the next bytes and what is taken disagree
            }
        } catch (const runner::grammar::AmbiguityError&) {  // a clean error, as complete() reports it
        }
        static_cast<void>(matcher.complete());
    }
    return 0;
}
