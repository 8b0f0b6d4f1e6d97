#include "support/temp_tree.h"

#include <stdlib.h>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace test_support {

TempTree::TempTree() {
    std::string pattern = (std::filesystem::temp_directory_path() / "oar-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    root_ = pattern;
    // Readable by the unprivileged user that permission tests switch to.
    std::filesystem::permissions(root_, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                            std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                            std::filesystem::perms::others_exec);
}

TempTree::~TempTree() {
    std::error_code ec;
    // Permission tests leave mode-000 files behind; make everything removable first.
    for (std::filesystem::recursive_directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec))
        std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all, std::filesystem::perm_options::add,
                                     ec);
    std::filesystem::remove_all(root_, ec);
}

void TempTree::write(const std::filesystem::path& relative, const std::string& text) const {
    const auto path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

void TempTree::copy(const std::filesystem::path& from, const std::filesystem::path& relative) const {
    const auto to = root_ / relative;
    std::filesystem::create_directories(to.parent_path());
    std::filesystem::copy(from, to,
                          std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace test_support
