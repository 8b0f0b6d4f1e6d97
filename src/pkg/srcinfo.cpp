#include "pkg/srcinfo.h"

namespace pkg {

namespace {

void attr(std::string& out, const std::string& key, const std::string& value) {
    if (!value.empty()) out += "\t" + key + " = " + value + "\n";
}

void attr(std::string& out, const std::string& key, const std::vector<std::string>& values) {
    for (const auto& v : values) attr(out, key, v);
}

}  // namespace

std::string write_srcinfo(const Recipe& r) {
    std::string out = "pkgbase = " + r.pkgname + "\n";
    attr(out, "pkgdesc", r.pkgdesc);
    attr(out, "pkgver", r.pkgver);
    attr(out, "pkgrel", r.pkgrel);
    attr(out, "url", r.url);
    attr(out, "install", r.install);
    attr(out, "arch", r.arch);
    attr(out, "license", r.license);
    attr(out, "checkdepends", r.checkdepends);
    attr(out, "makedepends", r.makedepends);
    attr(out, "depends", r.depends);
    attr(out, "optdepends", r.optdepends);
    attr(out, "provides", r.provides);
    attr(out, "conflicts", r.conflicts);
    attr(out, "options", r.options);
    attr(out, "backup", r.backup);
    std::vector<std::string> sources, sums;
    for (const auto& s : r.sources) {
        sources.push_back(s.entry);
        sums.push_back(s.checksum);
    }
    attr(out, "source", sources);
    attr(out, "b2sums", sums);
    out += "\npkgname = " + r.pkgname + "\n";
    return out;
}

}  // namespace pkg
