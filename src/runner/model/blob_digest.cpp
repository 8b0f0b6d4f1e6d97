#include "runner/model/blob_digest.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "common/atomic_write.h"
#include "common/regular_file.h"

namespace runner {

namespace {

// What identifies a file's content without reading it, as long as nobody sets times back on purpose.
common::Result<std::string> identity(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return common::make_error(path.string() + ": cannot stat");
    return std::to_string(st.st_dev) + ' ' + std::to_string(st.st_ino) + ' ' + std::to_string(st.st_size) + ' ' +
           std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) + '\n';
}

// The SHA-256 of the file's content, in lowercase hex.
common::Result<std::string> sha256_hex(const std::filesystem::path& path,
                                       const std::function<void(std::uint64_t)>& hashed) {
    const auto fd = common::open_regular_file(path);
    if (!fd) return fd.error();
    const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
        return common::make_error("cannot start a SHA-256 digest (OpenSSL)");
    std::vector<unsigned char> buf(1 << 20);
    for (;;) {
        const ssize_t n = ::read(fd->get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return common::make_error(path.string() + ": read error");
        if (n == 0) break;
        EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
        hashed(static_cast<std::uint64_t>(n));
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &length);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

}  // namespace

common::Result<BlobCheck> check_blob_digests(const OllamaManifest& manifest, const std::filesystem::path& records,
                                             bool all,
                                             const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
    struct Pending {
        const OllamaLayer* layer;
        std::string want, id;
    };
    BlobCheck check;
    std::vector<Pending> pending;
    std::uint64_t total = 0;
    for (const auto& layer : manifest.layers) {
        const auto name = layer.blob.filename().string();  // sha256-<hex>, checked when the manifest was read
        // A missing blob is the loader's to report, with the layer it belongs to.
        std::error_code ec;
        if (!std::filesystem::exists(layer.blob, ec)) continue;
        auto id = identity(layer.blob);
        if (!id)
            return common::make_error(id.error().message + " (blob of " + layer.name + " in " + manifest.file.string() +
                                      ")");
        const auto record = common::read_regular_file(records / name);
        if (!all && record && *record == *id) {
            ++check.remembered;
            continue;
        }
        total += std::filesystem::file_size(layer.blob);
        pending.push_back({&layer, name.substr(7), *id});
    }
    std::uint64_t done = 0;
    for (const auto& p : pending) {
        auto got = sha256_hex(p.layer->blob, [&](std::uint64_t n) { progress(done += n, total); });
        if (!got) return got.error();
        if (*got != p.want)
            return common::make_error(p.layer->blob.string() + ": content has digest sha256:" + *got +
                                      ", not the one it is named by (blob of " +
                                      (p.layer->name.empty() ? p.layer->media_type : p.layer->name) + " in " +
                                      manifest.file.string() +
                                      "): the blob is damaged or was changed; pull or create the model again");
        ++check.hashed;
        std::error_code ec;
        std::filesystem::create_directories(records, ec);
        // A record that cannot be written only means hashing again next time.
        (void)common::write_file_atomically(records / p.layer->blob.filename(), p.id);
    }
    return check;
}

}  // namespace runner
