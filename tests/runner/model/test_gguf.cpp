// The GGUF reader against files written by the `gguf` package (llama.cpp's writer;
// tools/reference/make_gguf_fixtures.py, expected values in tests/fixtures/gguf/expected.json), and
// against malformed files built here: each is an error naming the file and the problem, never a crash.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "runner/model/gguf.h"
#include "support/digest.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;

namespace {

const fs::path fixtures = fs::path(OAR_FIXTURES) / "gguf";

std::span<const std::byte> as_bytes(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A GGUF file put together field by field, for the malformed cases.
struct Builder {
    std::string out;
    Builder& u32(std::uint32_t v) { return raw(&v, 4); }
    Builder& u64(std::uint64_t v) { return raw(&v, 8); }
    Builder& str(const std::string& s) {
        u64(s.size());
        out += s;
        return *this;
    }
    Builder& raw(const void* p, std::size_t n) {
        out.append(static_cast<const char*>(p), n);
        return *this;
    }
    // The header: magic, version, counts.
    static Builder header(std::uint32_t version, std::uint64_t n_tensors, std::uint64_t n_kv) {
        Builder b;
        b.out = "GGUF";
        b.u32(version).u64(n_tensors).u64(n_kv);
        return b;
    }
    // A tensor info: name, dims (ggml order), type id, offset in the data section.
    Builder& tensor(const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t type,
                    std::uint64_t offset) {
        str(name).u32(static_cast<std::uint32_t>(dims.size()));
        for (const auto d : dims) u64(d);
        return u32(type).u64(offset);
    }
    // Pads to the 32-byte alignment, then `data` bytes of data section.
    Builder& data(std::size_t bytes) {
        out.resize((out.size() + 31) / 32 * 32 + bytes, '\x5a');
        return *this;
    }
};

std::string parse_error(const std::string& bytes) {
    const auto h = runner::parse_gguf(as_bytes(bytes), "bad.gguf");
    REQUIRE_FALSE(h.ok());
    CHECK(h.error().message.rfind("bad.gguf: ", 0) == 0);
    return h.error().message;
}

}  // namespace

TEST_CASE("gguf: every metadata type and tensor type the gguf package writes, as it reads them back") {
    const auto expected = nlohmann::json::parse(test_support::read_file(fixtures / "expected.json"));
    for (const char* name : {"types.gguf", "aligned64.gguf"}) {
        CAPTURE(name);
        auto file = runner::GgufFile::open(fixtures / name);
        REQUIRE_MESSAGE(file.ok(), (file.ok() ? "" : file.error().message));
        const auto& h = file->header();
        const auto& want = expected[name];
        CHECK(h.version == 3);
        CHECK(h.alignment == want["alignment"].get<std::size_t>());
        CHECK(h.data_start == want["data_start"].get<std::size_t>());
        CHECK(h.string("general.architecture") == "llama");
        REQUIRE(h.tensors.size() == want["tensors"].size());
        for (std::size_t i = 0; i < h.tensors.size(); ++i) {
            const auto& t = h.tensors[i];
            const auto& w = want["tensors"][i];
            CAPTURE(t.name);
            CHECK(t.name == w["name"].get<std::string>());
            CHECK(std::string(t.type->name) == w["type"].get<std::string>());
            CHECK(t.dims == w["dims"].get<std::vector<std::int64_t>>());
            CHECK(t.bytes == w["bytes"].get<std::size_t>());
            CHECK(t.offset == w["offset"].get<std::size_t>());
            const auto data = file->data(t);
            CHECK(test_support::sha256_hex(std::string(reinterpret_cast<const char*>(data.data()), data.size())) ==
                  w["sha256"].get<std::string>());
        }
    }
    auto file = runner::GgufFile::open(fixtures / "types.gguf");
    REQUIRE(file.ok());
    const auto& h = file->header();
    CHECK(h.integer("test.u8") == 200);
    CHECK(h.integer("test.i8") == -100);
    CHECK(h.integer("test.u16") == 60000);
    CHECK(h.integer("test.i16") == -30000);
    CHECK(h.integer("test.u32") == 4000000000);
    CHECK(h.integer("test.i32") == -2000000000);
    CHECK(h.real("test.f32") == 0.5);
    CHECK(h.integer("test.bool") == 1);
    CHECK(h.find("test.bool")->type == runner::GgufType::boolean);
    CHECK(h.string("test.string") == "h\xc3\xa9llo\nworld");
    CHECK(h.integer("test.u64") == std::int64_t{1} << 40);
    CHECK(h.integer("test.i64") == -(std::int64_t{1} << 40));
    CHECK(h.real("test.f64") == -2.25);
    const auto* strings = h.find("test.strings");
    REQUIRE(strings);
    CHECK(strings->is_array);
    CHECK(strings->strings == std::vector<std::string>{"a", "", "<0x0A>", "\xc4\xa0the"});
    CHECK(h.find("test.ints")->integers == std::vector<std::int64_t>{1, -2, 3});
    CHECK(h.find("test.floats")->reals == std::vector<double>{0.25, -1.5});
    // A value of another kind, or none, is absent, not converted.
    CHECK_FALSE(h.integer("test.string"));
    CHECK_FALSE(h.string("test.strings"));
    CHECK_FALSE(h.integer("no.such.key"));
}

TEST_CASE("gguf: a file cut short anywhere before its last tensor's end is an error, never a crash") {
    const auto whole = test_support::read_file(fixtures / "types.gguf");
    auto file = runner::GgufFile::open(fixtures / "types.gguf");
    REQUIRE(file.ok());
    std::size_t end = 0;
    for (const auto& t : file->header().tensors) end = std::max(end, t.offset + t.bytes);
    for (std::size_t size = 0; size < end; ++size) {
        CAPTURE(size);
        CHECK_FALSE(runner::parse_gguf(as_bytes(whole.substr(0, size)), "cut.gguf").ok());
    }
    CHECK(runner::parse_gguf(as_bytes(whole.substr(0, end)), "cut.gguf").ok());
}

TEST_CASE("gguf: malformed headers, metadata and tensor infos each say what is wrong") {
    const auto one_tensor = [](std::uint32_t type, std::uint64_t offset, std::vector<std::uint64_t> dims = {32, 2}) {
        return Builder::header(3, 1, 0).tensor("w", std::move(dims), type, offset).data(256).out;
    };
    CHECK(runner::parse_gguf(as_bytes(one_tensor(0, 0)), "ok.gguf").ok());

    CHECK(parse_error("GGML" + Builder::header(3, 0, 0).out.substr(4)).find("does not start with GGUF's magic") !=
          std::string::npos);
    CHECK(parse_error(Builder::header(1, 0, 0).out).find("is GGUF version 1; versions 2 and 3 are read") !=
          std::string::npos);
    CHECK(
        parse_error(Builder::header(3, 1ull << 60, 0).out).find("the tensor count is 1152921504606846976, more than") !=
        std::string::npos);
    CHECK(parse_error(Builder::header(3, 0, 1).str("k").u32(13).out).find("metadata k has value type 13") !=
          std::string::npos);
    CHECK(parse_error(Builder::header(3, 0, 1).str("k").u32(9).u32(9).u32(0).u64(0).out)
              .find("metadata k is an array of arrays") != std::string::npos);
    CHECK(parse_error(Builder::header(3, 0, 1).str("k").u32(9).u32(8).u64(1ull << 40).out)
              .find("an array's length is 1099511627776, more than") != std::string::npos);
    CHECK(parse_error(Builder::header(3, 0, 1).str("k").u32(8).u64(1ull << 20).out)
              .find("the file ends inside a string value") != std::string::npos);
    const std::uint8_t two = 2;
    CHECK(parse_error(Builder::header(3, 0, 1).str("flag").u32(7).raw(&two, 1).out)
              .find("metadata flag is a bool of 2, not 0 or 1") != std::string::npos);
    CHECK(parse_error(Builder::header(3, 0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).out)
              .find("metadata k appears twice") != std::string::npos);
    CHECK(parse_error(Builder::header(3, 0, 1).str("general.alignment").u32(4).u32(48).out)
              .find("general.alignment is not a power of two held as a uint32") != std::string::npos);
    CHECK(parse_error(Builder::header(3, 0, 1).str("general.alignment").u32(10).u64(64).out)
              .find("general.alignment is not a power of two held as a uint32") != std::string::npos);

    CHECK(parse_error(one_tensor(99, 0)).find("tensor w has ggml type 99, which this reader does not know") !=
          std::string::npos);
    CHECK(parse_error(one_tensor(0, 0, {32, 2, 1, 1, 1})).find("tensor w has 5 dimensions, not 1 to 4") !=
          std::string::npos);
    CHECK(parse_error(one_tensor(0, 0, {32, 0})).find("tensor w has a dimension of 0") != std::string::npos);
    CHECK(parse_error(one_tensor(12, 0, {128, 2}))
              .find("tensor w has rows of 128 weights, not a multiple of Q4_K's blocks of 256") != std::string::npos);
    CHECK(parse_error(one_tensor(0, 4)).find("tensor w starts at 4, not a multiple of the 32-byte alignment") !=
          std::string::npos);
    CHECK(parse_error(one_tensor(0, 32)).find("tensor w (256 bytes at 32) ends past the end of the file") !=
          std::string::npos);
    CHECK(parse_error(one_tensor(0, 1ull << 62)).find("ends past the end of the file") != std::string::npos);
    CHECK(parse_error(one_tensor(0, 0, {1ull << 40, 1ull << 30})).find("more elements than any model holds") !=
          std::string::npos);
    const auto two_tensors = [](std::uint64_t second_offset) {
        return Builder::header(3, 2, 0).tensor("a", {32, 2}, 0, 0).tensor("b", {32, 2}, 0, second_offset).data(512).out;
    };
    CHECK(runner::parse_gguf(as_bytes(two_tensors(256)), "ok.gguf").ok());
    CHECK(parse_error(two_tensors(224)).find("tensors a and b overlap") != std::string::npos);
    CHECK(parse_error(Builder::header(3, 2, 0).tensor("a", {32}, 0, 0).tensor("a", {32}, 0, 128).data(256).out)
              .find("tensor a appears twice") != std::string::npos);
    CHECK(
        parse_error(Builder::header(3, 1, 0).str(std::string(300, 'n')).out).find("a tensor name is 300 bytes long") !=
        std::string::npos);
}

TEST_CASE("gguf: a missing file is an error naming it") {
    const auto file = runner::GgufFile::open(fixtures / "no-such.gguf");
    REQUIRE_FALSE(file.ok());
    CHECK(file.error().message.find("no-such.gguf") != std::string::npos);
}

TEST_CASE("gguf: the fuzzing corpus parses with every tensor inside its file, or fails naming the file") {
    int ok = 0, failed = 0;
    for (const auto& entry : fs::directory_iterator(OAR_GGUF_CORPUS)) {
        const auto bytes = test_support::read_file(entry.path());
        const auto name = entry.path().filename().string();
        const auto h = runner::parse_gguf(as_bytes(bytes), name);
        if (h.ok()) {
            ++ok;
            for (const auto& t : h->tensors) {
                CHECK(t.offset >= h->data_start);
                CHECK(t.offset + t.bytes <= bytes.size());
            }
        } else {
            ++failed;
            CHECK(h.error().message.rfind(name + ": ", 0) == 0);
        }
    }
    CHECK(ok > 0);
    CHECK(failed > 0);
}
