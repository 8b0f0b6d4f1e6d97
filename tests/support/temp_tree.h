// A temporary folder tree for replaying machines, removed when the test ends.
#pragma once

#include <filesystem>
#include <string>

namespace test_support {

class TempTree {
  public:
    TempTree();
    TempTree(const TempTree&) = delete;
    TempTree& operator=(const TempTree&) = delete;
    ~TempTree();

    const std::filesystem::path& root() const { return root_; }
    std::filesystem::path topology() const { return root_ / "sys/class/kfd/kfd/topology"; }

    // Writes `text` to root/relative, creating folders.
    void write(const std::filesystem::path& relative, const std::string& text) const;
    // Copies a folder (or file) to root/relative.
    void copy(const std::filesystem::path& from, const std::filesystem::path& relative) const;

  private:
    std::filesystem::path root_;
};

std::string read_file(const std::filesystem::path& path);

}  // namespace test_support
