#include "pkg/generate.h"

#include <unistd.h>
#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "common/atomic_write.h"
#include "pkg/config.h"
#include "pkg/line_diff.h"
#include "pkg/recipe.h"
#include "pkg/srcinfo.h"
#include "pkg/template.h"

namespace pkg {

namespace {

struct TemplateOutput {
    const char* template_name;
    const char* output_name;
    bool local_source;  // listed in source=() with a checksum
};

// One template per generated file; PKGBUILD comes last because it carries the others' checksums.
constexpr TemplateOutput companions[] = {
    {"ollama.service", "ollama.service", true},
    {"ollama.env", "ollama.env", true},
    {"sysusers.conf", "sysusers.conf", true},
    {"tmpfiles.conf", "tmpfiles.conf", true},
    {"ollama-airllm-rocm.install", "ollama-airllm-rocm.install", false},
    {"nvchecker.toml", ".nvchecker.toml", false},
};

common::Result<std::string> read_text(const std::filesystem::path& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return common::make_error(path.string() + ": cannot read " + what);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

common::Result<std::vector<LocalSource>> read_patches(const std::filesystem::path& dir) {
    std::vector<LocalSource> patches;
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) return patches;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const auto name = entry.path().filename().string();
        if (entry.path().extension() != ".patch") continue;
        if (!entry.is_regular_file())
            return common::make_error(entry.path().string() + ": a patch must be a regular file");
        if (name.find_first_of(" '\"$") != std::string::npos)
            return common::make_error(entry.path().string() + ": patch names may not contain spaces, quotes or '$'");
        auto text = read_text(entry.path(), "the patch");
        if (!text) return text.error();
        patches.push_back({name, std::move(text).value()});
    }
    if (ec) return common::make_error(dir.string() + ": cannot list patches: " + ec.message());
    // Applied in name order, as `ls patches/*.patch` would list them.
    std::sort(patches.begin(), patches.end(),
              [](const LocalSource& a, const LocalSource& b) { return a.name < b.name; });
    return patches;
}

}  // namespace

common::Result<std::vector<GeneratedFile>> generate_recipe(const GenerateOptions& options,
                                                           const std::optional<std::string>& config_text) {
    auto config = config_text ? parse_config(*config_text, options.config.string()) : load_config(options.config);
    if (!config) return config.error();
    auto patches = read_patches(options.patches);
    if (!patches) return patches.error();

    std::vector<std::string> patch_names;
    for (const auto& p : *patches) patch_names.push_back(p.name);
    Variables vars = companion_variables(*config, patch_names);

    std::vector<GeneratedFile> files;
    std::vector<LocalSource> local_sources;
    std::set<std::string> used;
    std::string problems;
    const auto render = [&](const std::string& template_name) -> std::optional<std::string> {
        const auto path = options.templates / template_name;
        auto text = read_text(path, "the template");
        if (!text) {
            problems += (problems.empty() ? "" : "\n") + text.error().message;
            return std::nullopt;
        }
        auto rendered = render_template(*text, path.string(), vars);
        if (!rendered) {
            problems += (problems.empty() ? "" : "\n") + rendered.error().message;
            return std::nullopt;
        }
        used.insert(rendered->used.begin(), rendered->used.end());
        return rendered->text;
    };

    for (const auto& c : companions) {
        auto text = render(c.template_name);
        if (!text) continue;
        if (c.local_source) local_sources.push_back({c.output_name, *text});
        files.push_back({c.output_name, std::move(*text), ""});
    }
    if (!problems.empty()) return common::make_error(problems);

    Recipe recipe = make_recipe(*config);
    local_sources.insert(local_sources.end(), patches->begin(), patches->end());
    add_sources(recipe, *config, local_sources);
    add_pkgbuild_variables(vars, recipe);
    auto pkgbuild = render("PKGBUILD");
    if (!pkgbuild) return common::make_error(problems);

    // A variable no template uses means a template lost a setting the config still offers.
    std::string unused;
    for (const auto& [name, value] : vars)
        if (!used.count(name)) unused += (unused.empty() ? "" : ", ") + name;
    if (!unused.empty())
        return common::make_error(options.templates.string() + ": no template uses the variable(s) " + unused +
                                  "; use them or remove them from src/pkg/recipe.cpp");

    files.push_back({"PKGBUILD", std::move(*pkgbuild), ""});
    files.push_back({".SRCINFO", write_srcinfo(recipe), ""});
    const auto relative_patches = std::filesystem::relative(options.patches, options.output);
    for (const auto& p : *patches) files.push_back({p.name, "", (relative_patches / p.name).string()});
    return files;
}

std::vector<FileStatus> compare_with_disk(const std::vector<GeneratedFile>& files,
                                          const std::filesystem::path& output) {
    std::vector<FileStatus> statuses;
    for (const auto& f : files) {
        FileStatus s;
        s.name = f.name;
        const auto path = output / f.name;
        std::error_code ec;
        if (!f.symlink_target.empty()) {
            const auto target = std::filesystem::read_symlink(path, ec);
            s.up_to_date = !ec && target == f.symlink_target;
            if (!s.up_to_date) s.diff = f.name + ": should be a symlink to " + f.symlink_target + "\n";
        } else {
            auto current = read_text(path, "the generated file");
            const std::string on_disk = current ? *current : std::string();
            s.up_to_date = current && on_disk == f.contents;
            if (!s.up_to_date)
                s.diff = current ? line_diff(on_disk, f.contents, f.name + " (committed)", f.name + " (from templates)")
                                 : f.name + ": missing\n";
        }
        statuses.push_back(std::move(s));
    }
    return statuses;
}

common::Result<std::vector<std::string>> write_generated(const std::vector<GeneratedFile>& files,
                                                         const std::filesystem::path& output) {
    std::vector<std::string> changed;
    for (const auto& status : compare_with_disk(files, output)) {
        if (status.up_to_date) continue;
        const auto& f =
            *std::find_if(files.begin(), files.end(), [&](const GeneratedFile& g) { return g.name == status.name; });
        const auto path = output / f.name;
        if (!f.symlink_target.empty()) {
            // Symlinks are replaced atomically too: make the new link beside it, then rename over.
            const auto temp = output / ("." + f.name + ".link-" + std::to_string(::getpid()));
            std::error_code ec;
            std::filesystem::remove(temp, ec);
            std::filesystem::create_symlink(f.symlink_target, temp, ec);
            if (!ec) std::filesystem::rename(temp, path, ec);
            if (ec) {
                std::filesystem::remove(temp, ec);
                return common::make_error(path.string() + ": cannot create the symlink to " + f.symlink_target);
            }
        } else if (auto written = common::write_file_atomically(path, f.contents); !written) {
            return written.error();
        }
        changed.push_back(f.name);
    }
    return changed;
}

}  // namespace pkg
