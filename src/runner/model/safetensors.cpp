#include "runner/model/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>

namespace runner {

namespace {

// A header larger than this is not a model file (real ones are well under a few MB).
constexpr std::uint64_t max_header_bytes = 100ull << 20;

bool parse_dtype(const std::string& text, DType& out) {
    if (text == "F32")
        out = DType::f32;
    else if (text == "F16")
        out = DType::f16;
    else if (text == "BF16")
        out = DType::bf16;
    else
        return false;
    return true;
}

}  // namespace

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f32: return "F32";
        case DType::f16: return "F16";
        case DType::bf16: return "BF16";
        case DType::q8_0: return "Q8_0";
        case DType::q4_0: return "Q4_0";
        case DType::q4_k: return "Q4_K";
        case DType::q5_k: return "Q5_K";
        case DType::q6_k: return "Q6_K";
    }
    return "?";
}

std::size_t dtype_size(DType dtype) {
    if (is_block_type(dtype)) return 0;
    return dtype == DType::f32 ? 4 : 2;
}

bool is_block_type(DType dtype) { return dtype != DType::f32 && dtype != DType::f16 && dtype != DType::bf16; }

// ggml's block layouts (ggml-common.h's block_q8_0 ... block_q6_K).
std::size_t block_elements(DType dtype) {
    switch (dtype) {
        case DType::q8_0:
        case DType::q4_0: return 32;
        case DType::q4_k:
        case DType::q5_k:
        case DType::q6_k: return 256;
        default: return 1;
    }
}

std::size_t block_bytes(DType dtype) {
    switch (dtype) {
        case DType::q8_0: return 34;
        case DType::q4_0: return 18;
        case DType::q4_k: return 144;
        case DType::q5_k: return 176;
        case DType::q6_k: return 210;
        default: return dtype_size(dtype);
    }
}

std::int64_t TensorView::numel() const {
    std::int64_t n = 1;
    for (const auto d : shape) n *= d;
    return n;
}

std::string TensorView::shape_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

common::Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> prefix, std::size_t file_size,
                                                           const std::string& file) {
    const auto bad = [&](const std::string& why) { return common::make_error(file + ": " + why); };
    if (file_size < 8 || prefix.size() < 8)
        return bad("shorter than the 8-byte header length (truncated or not safetensors)");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
        header_len = (header_len << 8) | static_cast<std::uint8_t>(prefix[static_cast<std::size_t>(i)]);
    if (header_len > max_header_bytes)
        return bad("header length " + std::to_string(header_len) + " is over 100 MiB (not safetensors?)");
    if (header_len + 8 > file_size)
        return bad("header length " + std::to_string(header_len) + " runs past the end of the file (truncated?)");
    if (prefix.size() < header_len + 8) return bad("internal: header prefix too short");

    nlohmann::json header;
    try {
        const auto* text = reinterpret_cast<const char*>(prefix.data() + 8);
        header = nlohmann::json::parse(text, text + header_len);
    } catch (const nlohmann::json::exception& e) {
        return bad(std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) return bad("header is not a JSON object");

    SafetensorsHeader out;
    out.data_start = static_cast<std::size_t>(8 + header_len);
    const std::size_t data_size = file_size - out.data_start;
    for (const auto& item : header.items()) {
        const std::string name = item.key();
        const auto& entry = item.value();
        if (name == "__metadata__") {
            if (!entry.is_object()) return bad("__metadata__ is not an object");
            for (const auto& [k, v] : entry.items()) {
                if (!v.is_string()) return bad("__metadata__." + k + " is not a string");
                out.metadata[k] = v.get<std::string>();
            }
            continue;
        }
        const auto tbad = [&](const std::string& why) { return bad("tensor '" + name + "': " + why); };
        if (!entry.is_object()) return tbad("entry is not an object");
        if (!entry.contains("dtype") || !entry["dtype"].is_string()) return tbad("missing dtype");
        if (!entry.contains("shape") || !entry["shape"].is_array()) return tbad("missing shape");
        if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
            return tbad("data_offsets must be [begin, end]");
        TensorView t;
        t.name = name;
        const auto dtype_text = entry["dtype"].get<std::string>();
        if (!parse_dtype(dtype_text, t.dtype))
            return tbad("dtype " + dtype_text + " is not supported (F32, F16, BF16)");
        std::uint64_t numel = 1;
        for (const auto& d : entry["shape"]) {
            if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<std::int64_t>() >= 0))
                return tbad("shape has a non-integer or negative dimension");
            const auto dim = d.get<std::uint64_t>();
            if (dim > (1ull << 40) || (dim && numel > (1ull << 50) / dim)) return tbad("shape is impossibly large");
            numel *= dim;
            t.shape.push_back(static_cast<std::int64_t>(dim));
        }
        const auto& offsets = entry["data_offsets"];
        if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
            return tbad("data_offsets are not unsigned integers");
        const auto begin = offsets[0].get<std::uint64_t>();
        const auto end = offsets[1].get<std::uint64_t>();
        if (end < begin) return tbad("data_offsets end before they begin");
        if (end > data_size)
            return tbad("bytes " + std::to_string(begin) + ".." + std::to_string(end) +
                        " run past the data section of " + std::to_string(data_size) + " bytes (truncated file?)");
        if (end - begin != numel * dtype_size(t.dtype))
            return tbad("shape " + t.shape_string() + " of " + dtype_text + " needs " +
                        std::to_string(numel * dtype_size(t.dtype)) + " bytes, data_offsets give " +
                        std::to_string(end - begin));
        t.file_offset = out.data_start + static_cast<std::size_t>(begin);
        t.bytes = static_cast<std::size_t>(end - begin);
        out.tensors.push_back(std::move(t));
    }
    // Overlapping ranges would let one tensor's bytes be read as another's.
    std::vector<const TensorView*> sorted;
    for (const auto& t : out.tensors) sorted.push_back(&t);
    std::sort(sorted.begin(), sorted.end(),
              [](const TensorView* a, const TensorView* b) { return a->file_offset < b->file_offset; });
    for (std::size_t i = 1; i < sorted.size(); ++i)
        if (sorted[i]->file_offset < sorted[i - 1]->file_offset + sorted[i - 1]->bytes)
            return bad("tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
    return out;
}

common::Result<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
    auto mapping = MappedFile::open(path);
    if (!mapping) return mapping.error();
    const auto bytes = mapping->bytes();
    auto header = parse_safetensors_header(bytes, bytes.size(), path.string());
    if (!header) return header.error();
    SafetensorsFile file;
    file.mapping_ = std::make_unique<MappedFile>(std::move(mapping).value());
    for (auto& t : header->tensors) {
        t.data = file.mapping_->bytes().data() + t.file_offset;
        t.file = file.mapping_.get();
        file.tensors_.push_back(std::move(t));
    }
    return file;
}

}  // namespace runner
