// The BPE model on a tiny vocabulary: merge order, unk handling, byte fallback, ignore_merges.
#include <doctest/doctest.h>

#include "tokenizer/tiny.h"

using namespace test_tokenizer;
using Ids = std::vector<tokenizer::TokenId>;

TEST_CASE("tokenizer bpe: the lowest-ranked pair merges first, leftmost on ties") {
    const auto tok = tiny(tiny_json());
    const struct {
        const char* text;
        Ids ids;
    } rows[] = {
        {"abc", {1, 7}},      // "b c" (rank 0) before "a b" (rank 1): a + bc, and no "a bc" merge
        {"ab", {6}},          //
        {"abcd", {1, 7, 4}},  // b c first; then "c d" cannot apply (c is inside bc)
        {"cdab", {9, 6}},     //
        {"bcbc", {7, 7}},     // ties: both "b c" merge
        {"e", {5}},           //
        {"", {}},             //
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        CHECK(tok.encode(row.text, false) == row.ids);
    }
}

TEST_CASE("tokenizer bpe: unknown characters become unk, fused only with fuse_unk") {
    auto j = tiny_json();
    CHECK(tiny(j).encode("xya", false) == Ids{0, 0, 1});
    j["model"]["fuse_unk"] = true;
    CHECK(tiny(j).encode("xya", false) == Ids{0, 1});
    j["model"].erase("unk_token");
    CHECK(tiny(j).encode("xya", false) == Ids{1});  // no unk token: dropped, as Hugging Face does
}

TEST_CASE("tokenizer bpe: byte_fallback spells unknown characters as <0xNN> tokens") {
    auto j = tiny_json();
    j["model"]["byte_fallback"] = true;
    CHECK(tiny(j).encode("AB", false) == Ids{10, 11});
    CHECK(tiny(j).encode("AZ", false) == Ids{10, 0});  // no <0x5A>: unk
}

TEST_CASE("tokenizer bpe: ignore_merges takes a whole piece found in the vocabulary") {
    auto j = tiny_json();
    j["model"]["vocab"]["bcd"] = 13;  // reachable only as a whole, never by merges
    CHECK(tiny(j).encode("bcd", false) == Ids{7, 4});
    j["model"]["ignore_merges"] = true;
    CHECK(tiny(j).encode("bcd", false) == Ids{13});
}
