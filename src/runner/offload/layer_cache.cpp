#include "runner/offload/layer_cache.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "common/regular_file.h"

namespace runner {

namespace {

constexpr char magic[8] = {'O', 'A', 'R', 'L', 'A', 'Y', 'E', 'R'};
constexpr std::uint32_t format_version = 1;

// What the first bytes of a cache file hold; the rest of the 4 KiB is zero.
struct Header {
    char magic[8];
    std::uint32_t version;
    std::uint32_t compression;
    std::uint64_t layer;
    std::uint64_t slab_bytes;
    std::uint64_t offset[14];
    std::uint64_t size[14];
    std::uint32_t type[14];
    std::uint64_t checksum;
};
static_assert(sizeof(Header) <= cache_header_bytes);

// A fast 64-bit checksum (four multiply-rotate lanes over 8-byte words): it catches truncated,
// corrupted or mismatched files; it is not meant to resist tampering.
std::uint64_t checksum64(const std::byte* data, std::size_t n) {
    constexpr std::uint64_t prime1 = 0x9E3779B185EBCA87ull, prime2 = 0xC2B2AE3D27D4EB4Full;
    std::uint64_t lane[4] = {prime1, prime2, ~prime1, ~prime2};
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; ++k) {
            std::uint64_t word;
            std::memcpy(&word, data + i + 8 * static_cast<std::size_t>(k), 8);
            lane[k] += word * prime2;
            lane[k] = (lane[k] << 31 | lane[k] >> 33) * prime1;
        }
    std::uint64_t h = n;
    for (const auto l : lane) h = (h ^ l) * prime1 + prime2;
    for (; i < n; ++i) h = (h ^ static_cast<std::uint64_t>(data[i])) * prime1;
    return h ^ (h >> 29);
}

Header header_for(const LayerLayout& layout, Compression compression, std::size_t layer) {
    Header h{};
    std::memcpy(h.magic, magic, sizeof magic);
    h.version = format_version;
    h.compression = static_cast<std::uint32_t>(compression);
    h.layer = layer;
    h.slab_bytes = layout.bytes;
    for (std::size_t i = 0; i < 14; ++i) {
        h.offset[i] = layout.offset[i];
        h.size[i] = layout.size[i];
        h.type[i] = static_cast<std::uint32_t>(layout.type[i]);
    }
    return h;
}

// Reads exactly n bytes at `offset`; false on a short read or an error.
bool read_at(int fd, std::byte* dst, std::size_t n, std::size_t offset) {
    while (n > 0) {
        const ssize_t got = ::pread(fd, dst, n, static_cast<off_t>(offset));
        if (got <= 0) return false;
        dst += got, n -= static_cast<std::size_t>(got), offset += static_cast<std::size_t>(got);
    }
    return true;
}

// The header's problem, or nothing when it describes `expected`.
std::optional<std::string> header_problem(const Header& h, const Header& expected) {
    if (std::memcmp(h.magic, magic, sizeof magic) != 0) return "not an ollama-airllm layer cache file";
    if (h.version != format_version)
        return "cache format " + std::to_string(h.version) + ", expected " + std::to_string(format_version);
    if (h.compression != expected.compression || h.layer != expected.layer || h.slab_bytes != expected.slab_bytes ||
        std::memcmp(h.offset, expected.offset, sizeof h.offset) != 0 ||
        std::memcmp(h.size, expected.size, sizeof h.size) != 0 ||
        std::memcmp(h.type, expected.type, sizeof h.type) != 0)
        return "written for another layer, model or compression";
    return std::nullopt;
}

std::optional<Header> read_header(const std::filesystem::path& file, int& fd_out) {
    auto opened = common::open_regular_file(file);
    fd_out = opened ? opened->release() : -1;
    if (fd_out < 0) return std::nullopt;
    std::vector<std::byte> raw(sizeof(Header));
    if (!read_at(fd_out, raw.data(), raw.size(), 0)) return std::nullopt;
    Header h;
    std::memcpy(&h, raw.data(), sizeof h);
    return h;
}

// Writes `data` after the header to `file` through a temporary name, synced, then renamed.
std::optional<std::string> write_atomically(const std::filesystem::path& file, const Header& h,
                                            const std::vector<std::byte>& slab) {
    const auto tmp = std::filesystem::path(file.string() + ".partial");
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return std::string("cannot create ") + tmp.string() + ": " + std::strerror(errno);
    std::vector<std::byte> head(cache_header_bytes);
    std::memcpy(head.data(), &h, sizeof h);
    bool ok = true;
    const std::vector<std::byte>* parts[] = {&head, &slab};
    for (const auto* part : parts) {
        const std::byte* p = part->data();
        std::size_t left = part->size();
        while (ok && left > 0) {
            const ssize_t n = ::write(fd, p, left);
            if (n <= 0)
                ok = false;
            else
                p += n, left -= static_cast<std::size_t>(n);
        }
    }
    const int error = ok ? 0 : errno;
    ok = ok && ::fsync(fd) == 0;
    ::close(fd);
    std::error_code ec;
    if (ok) std::filesystem::rename(tmp, file, ec);
    if (!ok || ec) {
        std::filesystem::remove(tmp, ec);
        return "cannot write " + file.string() + ": " + std::strerror(error ? error : EIO) +
               " (is the disk full? the cache needs the compressed size of the model)";
    }
    return std::nullopt;
}

}  // namespace

std::filesystem::path default_cache_root() {
    if (const char* dir = std::getenv("AIRLLM_CACHE_DIR"); dir && *dir) return dir;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
        return std::filesystem::path(xdg) / "ollama-airllm";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::filesystem::path(home) / ".cache/ollama-airllm";
    // Without HOME, the home folder the password database gives this user: a cache in a folder every
    // user shares could be planted by another one.
    if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir && *pw->pw_dir)
        return std::filesystem::path(pw->pw_dir) / ".cache/ollama-airllm";
    return std::filesystem::path("/tmp") / ("ollama-airllm-cache-" + std::to_string(::getuid()));
}

std::string model_id(const ModelWeights& weights) {
    std::string description;
    // The first bytes of a tensor alone kept a stale cache for weights rewritten further in: each
    // file's size and modification time join them, so a file written again (in place or replaced)
    // gives another cache folder. A copy that keeps its times (cp -a, rsync -t) keeps its cache.
    std::set<const MappedFile*> files;
    const auto add = [&](const TensorView* t) {
        if (!t) return;
        description += t->name + ':' + dtype_name(t->dtype) + ':' + t->shape_string() + ':';
        description.append(reinterpret_cast<const char*>(t->data), std::min<std::size_t>(t->bytes, 64));
        if (t->file && files.insert(t->file).second) {
            struct stat st {};
            if (::stat(t->file->path().c_str(), &st) == 0)
                description += ':' + std::to_string(st.st_size) + ':' + std::to_string(st.st_mtim.tv_sec) + '.' +
                               std::to_string(st.st_mtim.tv_nsec);
        }
    };
    add(weights.token_embd);
    add(weights.output);
    for (const auto& l : weights.layers)
        for (const auto* t : layer_tensors(l)) add(t);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(
                      checksum64(reinterpret_cast<const std::byte*>(description.data()), description.size())));
    return hex;
}

std::filesystem::path cache_dir(const std::filesystem::path& root, const ModelWeights& weights,
                                Compression compression) {
    return root / model_id(weights) / compression_name(compression);
}

std::filesystem::path cache_file(const std::filesystem::path& dir, std::size_t layer) {
    char name[32];
    std::snprintf(name, sizeof name, "layer-%03zu.bin", layer);
    return dir / name;
}

std::optional<common::Error> read_cached_layer(const std::filesystem::path& dir, std::size_t layer,
                                               const LayerLayout& layout, Compression compression, std::byte* dst,
                                               bool verify) {
    const auto file = cache_file(dir, layer);
    int fd = -1;
    const auto h = read_header(file, fd);
    const auto fail = [&](const std::string& what) {
        if (fd >= 0) ::close(fd);
        return common::make_error(file.string() + ": " + what + "; run ollama-airllm prepare again");
    };
    if (!h) return fail(fd < 0 ? std::string("cannot open: ") + std::strerror(errno) : "shorter than its header");
    if (auto problem = header_problem(*h, header_for(layout, compression, layer))) return fail(*problem);
    if (!read_at(fd, dst, layout.bytes, cache_header_bytes)) return fail("shorter than its header says");
    if (verify && checksum64(dst, layout.bytes) != h->checksum) return fail("checksum mismatch (the file is damaged)");
    ::close(fd);
    return std::nullopt;
}

bool cache_complete(const std::filesystem::path& dir, const ModelWeights& weights, Compression compression) {
    for (std::size_t i = 0; i < weights.layers.size(); ++i) {
        int fd = -1;
        const auto h = read_header(cache_file(dir, i), fd);
        if (fd >= 0) ::close(fd);
        if (!h || header_problem(*h, header_for(layout_of(weights.layers[i], compression), compression, i)))
            return false;
    }
    return true;
}

common::Result<PrepareResult> prepare_cache(const ModelWeights& weights, Compression compression,
                                            const std::filesystem::path& dir,
                                            const std::function<void(std::size_t, std::size_t)>& progress) {
    if (compression == Compression::none) return common::make_error("prepare needs a compression: 8bit or 4bit");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return common::make_error("cannot create " + dir.string() + ": " + ec.message());
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    PrepareResult result;
    std::vector<std::byte> slab;
    for (std::size_t i = 0; i < weights.layers.size(); ++i) {
        const auto& l = weights.layers[i];
        const auto layout = layout_of(l, compression);
        slab.resize(layout.bytes);
        // A valid file from an earlier run is kept (a stopped prepare resumes here).
        if (!read_cached_layer(dir, i, layout, compression, slab.data(), true)) {
            ++result.kept;
        } else {
            fill_slab(slab.data(), l, layout, threads);
            auto h = header_for(layout, compression, i);
            h.checksum = checksum64(slab.data(), slab.size());
            if (auto problem = write_atomically(cache_file(dir, i), h, slab)) return common::make_error(*problem);
            ++result.written;
        }
        progress(i + 1, weights.layers.size());
    }
    return result;
}

}  // namespace runner
