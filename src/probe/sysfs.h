// Read-only access to a sysfs-like tree under a root ("/" on a live machine, a captured tree in tests
// and bug reports). Reads distinguish "absent" from "not permitted": a KFD node hidden by a device
// cgroup returns EPERM and must be skipped, not reported as a broken machine.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace probe {

enum class ReadStatus { ok, absent, denied, failed };

struct ReadResult {
    ReadStatus status = ReadStatus::failed;
    std::string text;    // the file's contents when status is ok
    std::string reason;  // strerror text otherwise
};

class SysfsTree {
  public:
    explicit SysfsTree(std::filesystem::path root) : root_(std::move(root)) {}

    const std::filesystem::path& root() const { return root_; }

    // `path` is absolute as on a live system ("/sys/class/kfd/..."); it is resolved under the root.
    std::filesystem::path resolve(const std::filesystem::path& path) const;
    // What a user should see in messages: the path under the root.
    std::string display(const std::filesystem::path& path) const;

    // sysfs attributes are at most one page; the limit keeps a garbage capture from eating memory.
    ReadResult read(const std::filesystem::path& path, std::size_t limit = 64 * 1024) const;
    bool exists(const std::filesystem::path& path) const;
    // Entry names in a directory, unsorted; empty when it cannot be listed.
    std::vector<std::string> list(const std::filesystem::path& path) const;
    // Final component of a symlink's target ("amdgpu" for device/driver); empty if not a link.
    std::string link_target_name(const std::filesystem::path& path) const;

  private:
    // open(2) of a live-system path, resolved inside the root (see open_in_root in sysfs.cpp).
    int open(const std::filesystem::path& path, int flags) const;

    std::filesystem::path root_;
};

}  // namespace probe
