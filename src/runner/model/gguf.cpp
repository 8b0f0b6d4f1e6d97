#include "runner/model/gguf.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <set>

namespace runner {

namespace {

constexpr std::array<GgmlType, 16> ggml_types = {{
    {0, "F32", 1, 4},
    {1, "F16", 1, 2},
    {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},
    {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},
    {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},
    {12, "Q4_K", 256, 144},
    {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},
    {15, "Q8_K", 256, 292},
    {24, "I8", 1, 1},
    {30, "BF16", 1, 2},
}};

// Larger than any real model's: a chat template is tens of KB, a tokenizer's longest token a few hundred bytes.
constexpr std::uint64_t max_string_bytes = 16ull << 20;
constexpr std::uint64_t max_name_bytes = 256;
constexpr std::uint64_t max_dims = 4;
constexpr std::int64_t max_elements = std::int64_t{1} << 48;

// What is wrong with the bytes, and where: thrown by the reader, turned into an error by parse_gguf.
struct Malformed {
    std::string why;
};

// A cursor over the file that never reads past its end.
class Reader {
  public:
    explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}

    std::size_t offset() const { return at_; }
    std::size_t left() const { return bytes_.size() - at_; }

    template <class T>
    T number(const char* what) {
        if (left() < sizeof(T)) throw Malformed{std::string("the file ends inside ") + what};
        T value;
        std::memcpy(&value, bytes_.data() + at_, sizeof(T));
        at_ += sizeof(T);
        return value;
    }

    std::string string(const char* what, std::uint64_t most = max_string_bytes) {
        const auto length = number<std::uint64_t>(what);
        if (length > most)
            throw Malformed{std::string(what) + " is " + std::to_string(length) + " bytes long, more than " +
                            std::to_string(most)};
        if (length > left()) throw Malformed{std::string("the file ends inside ") + what};
        std::string text(reinterpret_cast<const char*>(bytes_.data() + at_), static_cast<std::size_t>(length));
        at_ += static_cast<std::size_t>(length);
        return text;
    }

    // A count of items of at least `item_bytes` each, which the rest of the file must be able to hold.
    std::uint64_t count(const char* what, std::uint64_t item_bytes) {
        const auto n = number<std::uint64_t>(what);
        if (n > left() / item_bytes)
            throw Malformed{std::string(what) + " is " + std::to_string(n) + ", more than the file's " +
                            std::to_string(left()) + " remaining bytes can hold"};
        return n;
    }

  private:
    std::span<const std::byte> bytes_;
    std::size_t at_ = 0;
};

std::size_t value_bytes(GgufType type) {
    switch (type) {
        case GgufType::uint8:
        case GgufType::int8:
        case GgufType::boolean: return 1;
        case GgufType::uint16:
        case GgufType::int16: return 2;
        case GgufType::uint32:
        case GgufType::int32:
        case GgufType::float32: return 4;
        case GgufType::uint64:
        case GgufType::int64:
        case GgufType::float64:
        case GgufType::string: return 8;  // a string's length field
        case GgufType::array: return 12;  // element type and count
    }
    return 0;
}

GgufType value_type(Reader& in, const std::string& key) {
    const auto raw = in.number<std::uint32_t>("a value type");
    if (raw > static_cast<std::uint32_t>(GgufType::float64))
        throw Malformed{"metadata " + key + " has value type " + std::to_string(raw) + ", which GGUF does not define"};
    return static_cast<GgufType>(raw);
}

// One value of `type` (not an array) appended to `v`.
void read_value(Reader& in, GgufType type, GgufValue& v, const std::string& key) {
    switch (type) {
        case GgufType::uint8: v.integers.push_back(in.number<std::uint8_t>("a value")); break;
        case GgufType::int8: v.integers.push_back(in.number<std::int8_t>("a value")); break;
        case GgufType::uint16: v.integers.push_back(in.number<std::uint16_t>("a value")); break;
        case GgufType::int16: v.integers.push_back(in.number<std::int16_t>("a value")); break;
        case GgufType::uint32: v.integers.push_back(in.number<std::uint32_t>("a value")); break;
        case GgufType::int32: v.integers.push_back(in.number<std::int32_t>("a value")); break;
        case GgufType::int64: v.integers.push_back(in.number<std::int64_t>("a value")); break;
        case GgufType::uint64: {
            const auto u = in.number<std::uint64_t>("a value");
            if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                throw Malformed{"metadata " + key + " holds " + std::to_string(u) +
                                ", too large for any model setting"};
            v.integers.push_back(static_cast<std::int64_t>(u));
            break;
        }
        case GgufType::boolean: {
            const auto b = in.number<std::uint8_t>("a value");
            if (b > 1) throw Malformed{"metadata " + key + " is a bool of " + std::to_string(b) + ", not 0 or 1"};
            v.integers.push_back(b);
            break;
        }
        case GgufType::float32: v.reals.push_back(in.number<float>("a value")); break;
        case GgufType::float64: v.reals.push_back(in.number<double>("a value")); break;
        case GgufType::string: v.strings.push_back(in.string("a string value")); break;
        case GgufType::array: throw Malformed{"metadata " + key + " is an array of arrays, which no model uses"};
    }
}

GgufValue read_metadata_value(Reader& in, const std::string& key) {
    GgufValue v;
    v.type = value_type(in, key);
    if (v.type != GgufType::array) {
        read_value(in, v.type, v, key);
        return v;
    }
    v.is_array = true;
    v.type = value_type(in, key);
    if (v.type == GgufType::array) throw Malformed{"metadata " + key + " is an array of arrays, which no model uses"};
    const auto n = in.count("an array's length", value_bytes(v.type));
    for (std::uint64_t i = 0; i < n; ++i) read_value(in, v.type, v, key);
    return v;
}

GgufTensor read_tensor_info(Reader& in) {
    GgufTensor t;
    t.name = in.string("a tensor name", max_name_bytes);
    const auto n_dims = in.number<std::uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > max_dims)
        throw Malformed{"tensor " + t.name + " has " + std::to_string(n_dims) + " dimensions, not 1 to 4"};
    std::int64_t elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
        const auto dim = in.number<std::uint64_t>("a tensor's dimensions");
        if (dim == 0 || dim > static_cast<std::uint64_t>(max_elements) ||
            elements > max_elements / static_cast<std::int64_t>(dim))
            throw Malformed{"tensor " + t.name + " has a dimension of " + std::to_string(dim) +
                            " (zero, or more elements than any model holds)"};
        t.dims.push_back(static_cast<std::int64_t>(dim));
        elements *= static_cast<std::int64_t>(dim);
    }
    const auto type_id = in.number<std::uint32_t>("a tensor's type");
    t.type = ggml_type(type_id);
    if (!t.type)
        throw Malformed{"tensor " + t.name + " has ggml type " + std::to_string(type_id) +
                        ", which this reader does not know"};
    if (t.dims[0] % static_cast<std::int64_t>(t.type->block_elements) != 0)
        throw Malformed{"tensor " + t.name + " has rows of " + std::to_string(t.dims[0]) +
                        " weights, not a multiple of " + t.type->name + "'s blocks of " +
                        std::to_string(t.type->block_elements)};
    t.bytes = static_cast<std::size_t>(elements) / t.type->block_elements * t.type->block_bytes;
    t.offset = in.number<std::uint64_t>("a tensor's offset");
    return t;
}

GgufHeader parse(std::span<const std::byte> bytes) {
    Reader in(bytes);
    GgufHeader h;
    if (in.left() < 4 || std::memcmp(bytes.data(), "GGUF", 4) != 0) throw Malformed{"does not start with GGUF's magic"};
    in.number<std::uint32_t>("the magic");
    h.version = in.number<std::uint32_t>("the version");
    if (h.version != 2 && h.version != 3)
        throw Malformed{"is GGUF version " + std::to_string(h.version) + "; versions 2 and 3 are read"};
    // Each tensor's info takes at least 24 bytes, each metadata entry at least 13.
    const auto n_tensors = in.count("the tensor count", 24);
    const auto n_kv = in.count("the metadata count", 13);
    for (std::uint64_t i = 0; i < n_kv; ++i) {
        auto key = in.string("a metadata key", max_name_bytes);
        auto value = read_metadata_value(in, key);
        if (!h.metadata.emplace(key, std::move(value)).second) throw Malformed{"metadata " + key + " appears twice"};
    }
    if (const auto* a = h.find("general.alignment")) {
        if (a->is_array || a->type != GgufType::uint32 || a->integers.front() == 0 ||
            !std::has_single_bit(static_cast<std::uint64_t>(a->integers.front())))
            throw Malformed{"general.alignment is not a power of two held as a uint32"};
        h.alignment = static_cast<std::size_t>(a->integers.front());
    }
    std::set<std::string> names;
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
        h.tensors.push_back(read_tensor_info(in));
        if (!names.insert(h.tensors.back().name).second)
            throw Malformed{"tensor " + h.tensors.back().name + " appears twice"};
    }
    h.data_start = (in.offset() + h.alignment - 1) / h.alignment * h.alignment;
    if (h.data_start > bytes.size() && !h.tensors.empty()) throw Malformed{"ends before its data section"};

    // Offsets are relative to the data section; every tensor inside the file, aligned, none overlapping.
    std::vector<const GgufTensor*> by_offset;
    for (auto& t : h.tensors) {
        if (t.offset % h.alignment != 0)
            throw Malformed{"tensor " + t.name + " starts at " + std::to_string(t.offset) + ", not a multiple of the " +
                            std::to_string(h.alignment) + "-byte alignment"};
        if (t.offset > bytes.size() - h.data_start || t.bytes > bytes.size() - h.data_start - t.offset)
            throw Malformed{"tensor " + t.name + " (" + std::to_string(t.bytes) + " bytes at " +
                            std::to_string(t.offset) + ") ends past the end of the file (truncated download?)"};
        t.offset += h.data_start;
        by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
            throw Malformed{"tensors " + by_offset[i - 1]->name + " and " + by_offset[i]->name + " overlap"};
    return h;
}

}  // namespace

const GgmlType* ggml_type(std::uint32_t id) {
    const auto* found =
        std::find_if(ggml_types.begin(), ggml_types.end(), [&](const GgmlType& t) { return t.id == id; });
    return found == ggml_types.end() ? nullptr : found;
}

const GgufValue* GgufHeader::find(const std::string& key) const {
    const auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
}

std::optional<std::int64_t> GgufHeader::integer(const std::string& key) const {
    const auto* v = find(key);
    if (!v || v->is_array || v->integers.empty()) return std::nullopt;
    return v->integers.front();
}

std::optional<double> GgufHeader::real(const std::string& key) const {
    const auto* v = find(key);
    if (!v || v->is_array || v->reals.empty()) return std::nullopt;
    return v->reals.front();
}

std::optional<std::string> GgufHeader::string(const std::string& key) const {
    const auto* v = find(key);
    if (!v || v->is_array || v->strings.empty()) return std::nullopt;
    return v->strings.front();
}

common::Result<GgufHeader> parse_gguf(std::span<const std::byte> bytes, const std::string& file) {
    try {
        return parse(bytes);
    } catch (const Malformed& m) {
        return common::make_error(file + ": " + m.why);
    }
}

common::Result<GgufFile> GgufFile::open(const std::filesystem::path& path) {
    auto mapping = MappedFile::open(path);
    if (!mapping) return mapping.error();
    auto header = parse_gguf(mapping->bytes(), path.string());
    if (!header) return header.error();
    GgufFile f;
    f.mapping_ = std::make_unique<MappedFile>(std::move(mapping).value());
    f.header_ = std::move(header).value();
    return f;
}

}  // namespace runner
