// Cold sequential read bandwidth of a file, the bound for weights that come from disk.
#pragma once

#include <filesystem>

namespace bench {

// Reading the whole file after dropping it from the page cache, with `readers` threads on disjoint
// parts (pread, 8 MiB at a time). The best of 1 and 4 readers is the disk's bandwidth, since virtual
// disks often serve parallel requests faster than one stream. GB/s; 0 when the file cannot be read.
double cold_read_gbs(const std::filesystem::path& file, unsigned readers);

}  // namespace bench
