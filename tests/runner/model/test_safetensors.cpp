// Safetensors validation: every malformed header or truncated file is an error naming file and tensor.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "runner/model/hf_folder.h"
#include "runner/model/model_weights.h"
#include "runner/model/safetensors.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;
using test_support::TempTree;

namespace {

// A safetensors file from a header text and a data section of `data_bytes` zero bytes.
std::string make_file(const std::string& header, std::size_t data_bytes) {
    std::string out(8, '\0');
    const std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + std::string(data_bytes, '\0');
}

common::Result<runner::SafetensorsHeader> parse(const std::string& file) {
    return runner::parse_safetensors_header(std::span(reinterpret_cast<const std::byte*>(file.data()), file.size()),
                                            file.size(), "m.safetensors");
}

}  // namespace

TEST_CASE("a valid header parses with dtype, shape and offsets") {
    const auto file =
        make_file(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
                  R"("b":{"dtype":"F32","shape":[],"data_offsets":[12,16]}})",
                  16);
    const auto h = parse(file);
    REQUIRE_MESSAGE(h.ok(), (h.ok() ? "" : h.error().message));
    REQUIRE(h->tensors.size() == 2);
    CHECK(h->metadata.at("format") == "pt");
    const auto& a = h->tensors[0].name == "a" ? h->tensors[0] : h->tensors[1];
    CHECK(a.dtype == runner::DType::bf16);
    CHECK(a.shape_string() == "[2, 3]");
    CHECK(a.bytes == 12);
}

TEST_CASE("malformed safetensors headers name the file, the tensor and the problem") {
    const struct {
        std::string file;
        const char* expect;
    } rows[] = {
        {"abc", "m.safetensors: shorter than the 8-byte header length"},
        {std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "is over 100 MiB"},
        {std::string("\x40\x00\x00\x00\x00\x00\x00\x00", 8) + "{}", "runs past the end of the file (truncated?)"},
        {make_file("{not json", 0), "header is not valid JSON"},
        {make_file("[1,2]", 0), "header is not a JSON object"},
        {make_file(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8),
         "tensor 'a': dtype I64 is not supported"},
        {make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
         "tensor 'a': shape [2] of F32 needs 8 bytes, data_offsets give 4"},
        {make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
         "tensor 'a': bytes 0..8 run past the data section of 4 bytes"},
        {make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
         "tensor 'a': shape has a non-integer or negative dimension"},
        {make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4),
         "data_offsets end before they begin"},
        {make_file(R"({"a":{"dtype":"F32","shape":[1]}})", 4), "tensor 'a': data_offsets must be [begin, end]"},
        {make_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4), "tensor 'a': missing dtype"},
        {make_file(
             R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
             8),
         "tensors 'a' and 'b' overlap"},
        {make_file(R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})", 4),
         "shape is impossibly large"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.expect);
        const auto h = parse(row.file);
        REQUIRE_FALSE(h.ok());
        INFO(h.error().message);
        CHECK(h.error().message.find(row.expect) != std::string::npos);
    }
}

TEST_CASE("corrupt model folders give one clear error each") {
    const fs::path good = fs::path(OAR_FIXTURES) / "models/llama-sharded";
    const auto error_for = [&](const std::function<void(const TempTree&)>& damage) {
        TempTree tree;
        tree.copy(good, "m");
        damage(tree);
        auto source = runner::open_hf_folder(tree.root() / "m");
        if (!source) return source.error().message;
        auto weights = runner::bind_weights(**source);
        return weights ? std::string() : weights.error().message;
    };
    const auto shard = [](const TempTree& t) {
        for (const auto& e : fs::directory_iterator(t.root() / "m"))
            if (e.path().extension() == ".safetensors") return e.path();
        return fs::path();
    };
    CHECK(error_for([](const TempTree& t) { fs::remove(t.root() / "m/config.json"); }).find("no config.json") !=
          std::string::npos);
    CHECK(error_for([&](const TempTree& t) {
              fs::resize_file(shard(t), fs::file_size(shard(t)) - 100);
          }).find("(truncated") != std::string::npos);
    CHECK(error_for([](const TempTree& t) {
              auto c = test_support::read_file(t.root() / "m/config.json");
              c.replace(c.find("\"hidden_size\": 64"), 17, "\"hidden_size\": 65");
              t.write("m/config.json", c);
          }).find("has shape [64, 64], expected [64, 65]") != std::string::npos);
    // More layers than the weights hold: one line, also for a count that would not fit in memory as
    // a line or an entry per missing layer.
    for (const char* layers : {"4", "1000000000"}) {
        CAPTURE(layers);
        CHECK(error_for([&](const TempTree& t) {
                  auto c = test_support::read_file(t.root() / "m/config.json");
                  c.replace(c.find("\"num_hidden_layers\": 3"), 22, std::string("\"num_hidden_layers\": ") + layers);
                  t.write("m/config.json", c);
              })
                  .ends_with(std::string(": the config says ") + layers +
                             " layers (num_hidden_layers) but the weights have no model.layers.3.* tensors (they end "
                             "at layer 2)"));
    }
    CHECK(error_for([](const TempTree& t) {
              auto c = test_support::read_file(t.root() / "m/config.json");
              c.replace(c.find("LlamaForCausalLM"), 16, "GPTNeoXForCausalLM");
              t.write("m/config.json", c);
          }).find("architecture GPTNeoXForCausalLM is not supported (supported: LlamaForCausalLM") !=
          std::string::npos);
    CHECK(error_for([](const TempTree& t) {
              t.write("m/model.safetensors.index.json", "{\"weight_map\": {\"x\": \"../etc/passwd\"}}");
          }).find("leaves the model folder") != std::string::npos);
    CHECK(error_for([](const TempTree& t) {
              fs::remove(t.root() / "m/model.safetensors.index.json");
          }).find("no model.safetensors") != std::string::npos);
}

TEST_CASE("the safetensors fuzzing corpus parses or fails cleanly") {
    int ok = 0, failed = 0;
    for (const auto& entry : fs::directory_iterator(OAR_SAFETENSORS_CORPUS)) {
        const auto bytes = test_support::read_file(entry.path());
        const auto h =
            runner::parse_safetensors_header(std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()),
                                             bytes.size(), entry.path().filename().string());
        if (h.ok()) {
            ++ok;
            for (const auto& t : h->tensors) CHECK(t.file_offset + t.bytes <= bytes.size());
        } else {
            ++failed;
            CHECK(h.error().message.rfind(entry.path().filename().string() + ": ", 0) == 0);
        }
    }
    CHECK(ok > 0);
    CHECK(failed > 0);
}
