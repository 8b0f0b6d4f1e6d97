#include "disk_bandwidth.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace bench {

double cold_read_gbs(const fs::path& file, unsigned readers) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const auto size = static_cast<std::size_t>(fs::file_size(file));
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (unsigned r = 0; r < readers; ++r)
        threads.emplace_back([&, r] {
            std::vector<char> buf(8 << 20);
            const std::size_t begin = size * r / readers, end = size * (r + 1) / readers;
            for (std::size_t off = begin; off < end;) {
                const ssize_t n = ::pread(fd, buf.data(), std::min(buf.size(), end - off), static_cast<off_t>(off));
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
        });
    for (auto& t : threads) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    return static_cast<double>(size) / s / 1e9;
}

}  // namespace bench
