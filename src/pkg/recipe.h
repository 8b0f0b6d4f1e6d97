// The recipe as a value: PKGBUILD metadata (what .SRCINFO is written from) and the variables every
// template is rendered with, both derived from one Config so they cannot disagree.
#pragma once

#include <string>
#include <vector>

#include "pkg/config.h"
#include "pkg/template.h"

namespace pkg {

struct SourceEntry {
    std::string entry;     // as written in source=()
    std::string checksum;  // b2sum, or SKIP for git sources pinned by commit
};

struct Recipe {
    std::string pkgname = "ollama-airllm-rocm";
    std::string pkgver;
    std::string pkgrel;
    std::string pkgdesc;
    std::string url;
    std::string install;
    std::vector<std::string> arch, license, depends, makedepends, checkdepends, optdepends, provides, conflicts, backup,
        options;
    std::vector<SourceEntry> sources;
};

// A local file that goes into source=(): its name in the recipe folder and its contents.
struct LocalSource {
    std::string name;
    std::string contents;
};

// Metadata without sources; `add_sources` completes it once the local files are rendered.
Recipe make_recipe(const Config& config);
void add_sources(Recipe& recipe, const Config& config, const std::vector<LocalSource>& local_files);

// Variables for every template but PKGBUILD's arrays, which need the finished Recipe.
Variables companion_variables(const Config& config, const std::vector<std::string>& patch_names);
// Adds pkgname, pkgver, the arrays and the checksums.
void add_pkgbuild_variables(Variables& vars, const Recipe& recipe);

// A bash array's contents, quoted, wrapped one element per line when long: `name` sets the indent.
std::string bash_array(const std::string& name, const std::vector<std::string>& words);

}  // namespace pkg
