// The byte grammar matcher on small hand-written grammars: prefixes, dead ends, alternatives that share a
// prefix, recursion, and what a failed byte leaves.
#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>

#include "runner/completion/grammar.h"

using namespace runner::grammar;

namespace {

// greeting ::= "hi" | "hey" ("!")*
Grammar greeting() {
    Grammar g;
    const int bangs = g.add_rule();
    g.add_alternative(bangs, {});
    g.add_alternative(bangs, literal("!") + Sequence{ref(bangs)});
    g.set_root(g.add_rule({literal("hi"), Sequence{byte('h'), byte('e'), byte('y'), ref(bangs)}}));
    return g;
}

}  // namespace

TEST_CASE("grammar: a sentence is taken byte by byte, and whole only at its end") {
    Matcher m(greeting());
    CHECK_FALSE(m.complete());
    CHECK(m.accept("h"));
    CHECK_FALSE(m.complete());
    CHECK(m.allows("i"));
    CHECK(m.allows("ey!!"));
    CHECK_FALSE(m.allows("o"));
    CHECK(m.accept("ey"));
    CHECK(m.complete());
    CHECK(m.first_bytes()['!']);
    CHECK(m.accept("!!!"));
    CHECK(m.complete());
}

TEST_CASE("grammar: a byte no parse takes leaves the matcher as it was") {
    Matcher m(greeting());
    CHECK(m.accept("h"));
    CHECK_FALSE(m.accept("eyo"));  // e and y would be taken, o is not: nothing of it is
    CHECK(m.accept("i"));
    CHECK(m.complete());
    const auto next = m.first_bytes();
    CHECK(std::none_of(next.begin(), next.end(), [](bool b) { return b; }));
    CHECK_FALSE(m.accept("!"));
}

TEST_CASE("grammar: the next bytes are those some parse takes, and a negated set takes every other byte") {
    Grammar g;
    g.set_root(g.add_rule({Sequence{bytes({{'a', 'c'}, {'"', '"'}}, true)}}));
    Matcher m(g);
    const auto first = m.first_bytes();
    CHECK_FALSE(first['a']);
    CHECK_FALSE(first['c']);
    CHECK_FALSE(first['"']);
    CHECK(first['d']);
    CHECK(first[0]);
    CHECK(first[255]);
    CHECK(m.accept("\xff"));
    CHECK(m.complete());
    Matcher greet(greeting());
    const auto h = greet.first_bytes();
    CHECK(h['h']);
    CHECK(std::count(h.begin(), h.end(), true) == 1);
}

TEST_CASE("grammar: a rule without alternatives is a programming error, not a matcher that takes nothing") {
    Grammar g;
    g.set_root(g.add_rule());
    CHECK_THROWS_AS(Matcher{g}, std::logic_error);
}

TEST_CASE("grammar: a rule that reaches itself before a byte is found, through rules that may match nothing") {
    Grammar g;
    const int maybe = g.add_rule({{}, literal("x")});
    const int a = g.add_rule();
    g.add_alternative(a, Sequence{ref(maybe), ref(a), byte('y')});
    g.add_alternative(a, literal("z"));
    g.set_root(a);
    CHECK(g.left_recursive());
    CHECK_THROWS_AS(Matcher{g}, std::logic_error);
    CHECK_FALSE(greeting().left_recursive());  // its "!" repeats after a byte
}
