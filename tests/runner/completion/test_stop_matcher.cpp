// StopMatcher on streamed pieces: nothing of a stop string gets out, whatever the piece boundaries.
#include <doctest/doctest.h>

#include "runner/completion/stop_matcher.h"

namespace {

// Feeds `pieces` one by one and returns everything the matcher let out, flushed at the end unless stopped.
std::string stream(runner::StopMatcher& m, const std::vector<std::string>& pieces) {
    std::string out;
    for (const auto& p : pieces) {
        out += m.push(p);
        if (m.stopped()) return out;
    }
    return out + m.flush();
}

}  // namespace

TEST_CASE("stop matcher: a stop string split over pieces is cut, and text before it goes out") {
    runner::StopMatcher m({"<|end|>"});
    CHECK(stream(m, {"Hello", " wor", "ld<|e", "nd|> tail"}) == "Hello world");
    CHECK(m.stopped());
}

TEST_CASE("stop matcher: text that only looks like a stop string's start is held, then released") {
    runner::StopMatcher m({"STOP"});
    // As many bytes as the longest stop string less one stay back.
    CHECK(m.push("abcST") == "ab");
    CHECK(m.push("x") == "c");
    CHECK(m.flush() == "STx");
    CHECK_FALSE(m.stopped());
}

TEST_CASE("stop matcher: the earliest of several stop strings cuts, and held text never splits a character") {
    runner::StopMatcher earliest({"zz", "b"});
    CHECK(stream(earliest, {"a", "bzz"}) == "a");
    runner::StopMatcher utf8({"long stop"});
    const auto out = utf8.push("é日本語");  // 2 + 3 + 3 + 3 bytes, 8 held back
    CHECK(out == "é");
    CHECK(utf8.flush() == "日本語");
}

TEST_CASE("stop matcher: empty stop strings are ignored rather than stopping at once") {
    runner::StopMatcher m({"", "END"});
    CHECK(stream(m, {"some text", " END more"}) == "some text ");
    runner::StopMatcher none({""});
    CHECK(none.push("abc") == "abc");
    CHECK_FALSE(none.stopped());
}
