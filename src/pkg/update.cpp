#include "pkg/update.h"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_write.h"
#include "common/subprocess.h"
#include "pkg/config.h"
#include "pkg/config_edit.h"
#include "pkg/generate.h"
#include "pkg/sys/alpm_handle.h"
#include "pkg/sys/archive_reader.h"
#include "pkg/upstream_tags.h"

namespace pkg {

namespace fs = std::filesystem;

namespace {

class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern = (fs::temp_directory_path() / "ollama-pkg-update-XXXXXX").string();
        if (::mkdtemp(pattern.data())) path_ = pattern;
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    ~ScratchDir() {
        std::error_code ec;
        if (!path_.empty()) fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

common::Result<std::string> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return common::make_error(path.string() + ": cannot read");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

common::Result<std::string> git(const fs::path& dir, std::vector<std::string> args) {
    std::vector<std::string> argv = {"git", "-C", dir.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto run = common::run_subprocess(argv, {{}, {"GIT_TERMINAL_PROMPT=0"}, std::chrono::minutes(5)});
    if (!run) return run.error();
    if (!run->ok()) return common::make_error(common::describe_command(argv) + " failed: " + trim(run->err));
    return run->out;
}

void fill_defaults(UpdateOptions& o) {
    const auto base = o.config.has_parent_path() ? o.config.parent_path() : fs::path(".");
    if (o.templates.empty()) o.templates = base / "templates";
    if (o.patches.empty()) o.patches = base / "patches";
    if (o.output.empty()) o.output = base;
}

std::vector<fs::path> patch_files(const fs::path& dir) {
    std::vector<fs::path> patches;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.path().extension() == ".patch") patches.push_back(entry.path());
    std::sort(patches.begin(), patches.end());
    return patches;
}

// "error: patch failed: main.c:2" -> "main.c:2"; the hunk a reviewer has to look at.
std::string failed_hunk(const std::string& git_error) {
    const std::string marker = "error: patch failed: ";
    const auto at = git_error.find(marker);
    if (at == std::string::npos) return {};
    const auto end = git_error.find('\n', at);
    return git_error.substr(at + marker.size(),
                            end == std::string::npos ? std::string::npos : end - at - marker.size());
}

common::Result<fs::path> find_go() {
    return common::find_program("go", std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
}

// The last lines of a compiler's output: enough to name the file, line and error.
std::string last_lines(const std::string& text, std::size_t n) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    std::string outp;
    for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) outp += "\n  " + lines[i];
    return outp;
}

// Applies the patches to the checkout of `tag` and compiles it with the Go on PATH, as the PKGBUILD's
// build() will: a patch that applies but no longer compiles must stop the update too. Without Go
// the check is skipped, and said so.
common::Result<bool> build_patched(const fs::path& dir, const std::string& tag, const fs::path& patches_dir,
                                   std::ostream& out) {
    const auto go = find_go();
    if (!go) {
        out << "  go not found: the patched " << tag << " was not compiled (install Go to check that it builds)\n";
        return false;
    }
    for (const auto& patch : patch_files(patches_dir))
        if (auto r = git(dir, {"apply", fs::absolute(patch).string()}); !r) return r.error();
    const std::vector<std::string> argv = {go->string(), "build", "-o", "/dev/null", "."};
    auto built = common::run_subprocess(
        argv, {dir, {"GOTOOLCHAIN=local", "GOFLAGS=-modcacherw", "CGO_ENABLED=1"}, std::chrono::minutes(30)});
    if (!built) return built.error();
    if (!built->ok())
        return common::make_error("the patched " + tag +
                                  " does not compile (go build):" + last_lines(built->err + built->out, 12) +
                                  "\nupdate the patches for " + tag + " before updating");
    out << "  the patched " << tag << " compiles (go build)\n";
    return true;
}

// The h1: sum of the Go module in `dir` (its go.mod's module path) at `tag`, from the Go module proxy
// (`go mod download -json`, GOPROXY as the caller has it), which must name `commit` as its origin.
common::Result<std::string> module_sum(const fs::path& dir, const std::string& tag, const std::string& commit) {
    const auto go = find_go();
    if (!go)
        return common::make_error("go not found: upstream.module_sum cannot be recorded for " + tag +
                                  " (install Go, or remove module_sum from the configuration)");
    auto go_mod = read_file(dir / "go.mod");
    if (!go_mod) return go_mod.error();
    std::istringstream lines(*go_mod);
    std::string module;
    for (std::string line; std::getline(lines, line) && module.empty();)
        if (line.rfind("module ", 0) == 0) module = trim(line.substr(7));
    if (module.empty()) return common::make_error(tag + "'s go.mod names no module");
    ScratchDir outside;  // outside any module, so that go does not read one
    const std::vector<std::string> argv = {go->string(), "mod", "download", "-json", module + "@" + tag};
    auto run = common::run_subprocess(
        argv, {outside.path(), {"GOTOOLCHAIN=local", "GOFLAGS=-modcacherw"}, std::chrono::minutes(10)});
    if (!run) return run.error();
    const auto info = nlohmann::json::parse(run->out, nullptr, false);
    if (!info.is_object() || !run->ok())
        return common::make_error(common::describe_command(argv) + " failed: " +
                                  (info.is_object() ? info.value("Error", trim(run->err)) : trim(run->err)));
    const auto sum = info.value("Sum", std::string());
    const auto origin = info.contains("Origin") && info["Origin"].is_object() ? info["Origin"].value("Hash", "") : "";
    if (sum.rfind("h1:", 0) != 0) return common::make_error(common::describe_command(argv) + " gave no h1: sum");
    if (!origin.empty() && origin != commit)
        return common::make_error("the Go module proxy has " + module + "@" + tag + " at commit " + origin +
                                  " but the repository has it at " + commit + " (tag moved?); check before updating");
    return sum;
}

struct TagFacts {
    std::string llama_cpp_tag;
    std::string module_sum;  // empty unless asked for
};

// Shallow-fetches `tag`, checks it is `commit`, reads LLAMA_CPP_VERSION and checks every patch.
common::Result<TagFacts> inspect_tag(const std::string& repository, const std::string& tag, const std::string& commit,
                                     const fs::path& patches_dir, bool want_module_sum, std::ostream& out) {
    ScratchDir scratch;
    if (scratch.path().empty()) return common::make_error("cannot create a temporary folder for the shallow fetch");
    const auto& dir = scratch.path();
    if (auto r = git(dir, {"init", "-q"}); !r) return r.error();
    if (auto r = git(dir, {"fetch", "-q", "--depth", "1", repository, "refs/tags/" + tag}); !r) return r.error();
    auto fetched = git(dir, {"rev-parse", "FETCH_HEAD^{commit}"});
    if (!fetched) return fetched.error();
    if (trim(*fetched) != commit)
        return common::make_error(tag + " fetched as " + trim(*fetched) + " but ls-remote said " + commit +
                                  " (moved while updating?)");
    auto llama = git(dir, {"show", "FETCH_HEAD:LLAMA_CPP_VERSION"});
    if (!llama) return common::make_error(tag + " has no LLAMA_CPP_VERSION file: " + llama.error().message);
    if (auto r = git(dir, {"checkout", "-q", "FETCH_HEAD"}); !r) return r.error();
    for (const auto& patch : patch_files(patches_dir)) {
        auto check = git(dir, {"apply", "--check", fs::absolute(patch).string()});
        if (!check) {
            const auto hunk = failed_hunk(check.error().message);
            return common::make_error(patch.string() + " does not apply to " + tag +
                                      (hunk.empty() ? "" : " (hunk at " + hunk + ")") + ": " + check.error().message +
                                      "\nrebase the patch on " + tag + " before updating");
        }
        out << "  " << patch.filename().string() << " applies to " << tag << '\n';
    }
    TagFacts facts{trim(*llama), {}};
    if (want_module_sum) {
        auto sum = module_sum(dir, tag, commit);
        if (!sum) return sum.error();
        facts.module_sum = *sum;
        out << "  Go module sum " << facts.module_sum << '\n';
    }
    if (fs::exists(dir / "go.mod"))
        if (auto built = build_patched(dir, tag, patches_dir, out); !built) return built.error();
    return facts;
}

// Renders the recipe from `config_text` and writes config and recipe, or only reports with dry_run.
int write_update(const UpdateOptions& o, const std::string& config_text, std::ostream& out, std::ostream& err) {
    const auto files = generate_recipe({o.config, o.templates, o.patches, o.output}, config_text);
    if (!files) {
        err << "ollama-pkg update: the edited configuration does not generate: " << files.error().message << '\n';
        return update_failed;
    }
    std::vector<std::string> stale;
    for (const auto& s : compare_with_disk(*files, o.output))
        if (!s.up_to_date) stale.push_back(s.name);
    if (o.dry_run) {
        out << "dry run: would write " << o.config.string();
        for (const auto& name : stale) out << ", " << name;
        out << '\n';
        return update_changed;
    }
    if (auto w = common::write_file_atomically(o.config, config_text); !w) {
        err << "ollama-pkg update: " << w.error().message << '\n';
        return update_failed;
    }
    const auto written = write_generated(*files, o.output);
    if (!written) {
        err << "ollama-pkg update: " << written.error().message << '\n';
        return update_failed;
    }
    out << "wrote " << o.config.string();
    for (const auto& name : *written) out << ", " << name;
    out << "\nreview with `git diff`, then build: ollama-pkg build\n";
    return update_changed;
}

}  // namespace

int update_upstream(const UpdateOptions& options, std::ostream& out, std::ostream& err) {
    UpdateOptions o = options;
    fill_defaults(o);
    const auto fail = [&](const std::string& why) {
        err << "ollama-pkg update: " << why << '\n';
        return update_failed;
    };
    auto text = read_file(o.config);
    if (!text) return fail(text.error().message);
    auto config = parse_config(*text, o.config.string());
    if (!config) return fail(config.error().message);

    out << "listing tags of " << config->upstream.repository << '\n';
    auto tags = list_remote_tags(config->upstream.repository);
    if (!tags) return fail(tags.error().message);
    const auto newest = newest_release(*tags, o.include_rc);
    if (!newest)
        return fail(config->upstream.repository + " has no release tags" +
                    (o.include_rc ? "" : " (release candidates skipped; --rc includes them)"));
    const auto current = pkgver_from_tag(config->upstream.tag);
    const auto candidate = pkgver_from_tag(newest->name);
    if (sys::vercmp(candidate, current) <= 0) {
        out << "up to date: " << config->upstream.tag << " (newest release " << newest->name << ")\n";
        return update_up_to_date;
    }
    out << "new release: " << config->upstream.tag << " -> " << newest->name << " at " << newest->commit << '\n';

    const bool want_sum = !config->upstream_module_sum.empty();
    auto facts = inspect_tag(config->upstream.repository, newest->name, newest->commit, o.patches, want_sum, out);
    if (!facts) return fail(facts.error().message);
    out << "  LLAMA_CPP_VERSION " << facts->llama_cpp_tag << '\n';
    auto llama_tags = list_remote_tags(config->llama_cpp.repository, "refs/tags/" + facts->llama_cpp_tag);
    if (!llama_tags) return fail(llama_tags.error().message);
    const auto llama = std::find_if(llama_tags->begin(), llama_tags->end(),
                                    [&](const RemoteTag& t) { return t.name == facts->llama_cpp_tag; });
    if (llama == llama_tags->end())
        return fail(config->llama_cpp.repository + " has no tag " + facts->llama_cpp_tag + " (named by " +
                    newest->name + "'s LLAMA_CPP_VERSION)");
    out << "  llama.cpp " << llama->name << " at " << llama->commit << '\n';

    std::vector<ConfigEdit> edits = {{{"upstream", "tag"}, newest->name},
                                     {{"upstream", "commit"}, newest->commit},
                                     {{"llama_cpp", "tag"}, llama->name},
                                     {{"llama_cpp", "commit"}, llama->commit},
                                     {{"pkgrel"}, "1"}};
    if (want_sum) edits.push_back({{"upstream", "module_sum"}, facts->module_sum});
    auto edited = edit_config_text(*text, o.config.string(), edits);
    if (!edited) return fail(edited.error().message);
    return write_update(o, *edited, out, err);
}

namespace {

bool is_rocm_package(const std::string& name) {
    static const char* prefixes[] = {"rocm-",   "hip",     "rocblas",   "rocsolver", "rocsparse",
                                     "rocprim", "rocrand", "rocthrust", "hsa-",      "comgr",
                                     "rccl",    "miopen",  "rocfft",    "roctracer", "rocprofiler"};
    return std::any_of(std::begin(prefixes), std::end(prefixes), [&](const char* p) { return name.rfind(p, 0) == 0; });
}

// "hipblas-7.2.0-1-x86_64" -> {hipblas, 7.2.0-1}: pkgver, pkgrel and arch never contain '-'.
std::optional<std::pair<std::string, std::string>> split_installed(const std::string& entry) {
    const auto arch_dash = entry.rfind('-');
    if (arch_dash == std::string::npos) return std::nullopt;
    const auto rel_dash = entry.rfind('-', arch_dash - 1);
    if (rel_dash == std::string::npos || rel_dash == 0) return std::nullopt;
    const auto ver_dash = entry.rfind('-', rel_dash - 1);
    if (ver_dash == std::string::npos || ver_dash == 0) return std::nullopt;
    return std::make_pair(entry.substr(0, ver_dash), entry.substr(ver_dash + 1, arch_dash - ver_dash - 1));
}

common::Result<std::map<std::string, std::string>> built_against(const fs::path& package) {
    auto reader = sys::ArchiveReader::open(package);
    if (!reader) return reader.error();
    for (;;) {
        auto entry = reader->next();
        if (!entry) return entry.error();
        if (!*entry) break;
        if ((*entry)->path != ".BUILDINFO") continue;
        auto data = reader->read_data();
        if (!data) return data.error();
        std::map<std::string, std::string> rocm;
        std::istringstream lines(*data);
        for (std::string line; std::getline(lines, line);) {
            const std::string key = "installed = ";
            if (line.rfind(key, 0) != 0) continue;
            const auto parsed = split_installed(line.substr(key.size()));
            if (parsed && is_rocm_package(parsed->first)) rocm[parsed->first] = parsed->second;
        }
        return rocm;
    }
    return common::make_error(package.string() + ": no .BUILDINFO (not a makepkg package?)");
}

fs::path newest_package(const fs::path& dir) {
    fs::path best;
    fs::file_time_type best_time{};
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const auto name = entry.path().filename().string();
        if (name.rfind("ollama-airllm-rocm-", 0) != 0 || name.find(".pkg.tar.") == std::string::npos) continue;
        if (best.empty() || entry.last_write_time() > best_time) {
            best = entry.path();
            best_time = entry.last_write_time();
        }
    }
    return best;
}

}  // namespace

int update_for_rocm(const RocmOptions& options, std::ostream& out, std::ostream& err) {
    RocmOptions o = options;
    fill_defaults(o.update);
    const auto fail = [&](const std::string& why) {
        err << "ollama-pkg update --rocm: " << why << '\n';
        return update_failed;
    };
    if (o.package.empty()) o.package = newest_package(o.update.output);
    if (o.package.empty())
        return fail("no built ollama-airllm-rocm package beside " + o.update.config.string() + "; pass --package FILE");
    auto built = built_against(o.package);
    if (!built) return fail(built.error().message);
    if (built->empty())
        return fail(o.package.string() +
                    ": its .BUILDINFO lists no ROCm packages (built with --nodeps?), so what it was built "
                    "against is unknown; rebuild it on this machine with ollama-pkg build");
    auto handle = sys::AlpmHandle::open(o.root, o.dbpath);
    if (!handle) return fail(handle.error().message);

    std::vector<std::string> changes;
    for (const auto& [name, version] : *built) {
        auto local = handle->local_package(name);
        if (!local) return fail(local.error().message);
        const std::string now = *local ? (**local).version : std::string("(not installed)");
        out << "  " << name << ": built against " << version << ", installed " << now << '\n';
        if (now != version) changes.push_back(name + " " + version + " -> " + now);
    }
    if (changes.empty()) {
        out << "ROCm unchanged since " << o.package.filename().string() << " was built\n";
        return update_up_to_date;
    }
    auto text = read_file(o.update.config);
    if (!text) return fail(text.error().message);
    auto config = parse_config(*text, o.update.config.string());
    if (!config) return fail(config.error().message);
    const auto pkgrel = std::to_string(config->pkgrel + 1);
    out << "ROCm changed (";
    for (std::size_t i = 0; i < changes.size(); ++i) out << (i ? ", " : "") << changes[i];
    out << "): the HIP backend links ROCm's libraries and breaks until rebuilt (ollama#7564); pkgrel " << config->pkgrel
        << " -> " << pkgrel << '\n';
    auto edited = edit_config_text(*text, o.update.config.string(), {{{"pkgrel"}, pkgrel}});
    if (!edited) return fail(edited.error().message);
    return write_update(o.update, *edited, out, err);
}

}  // namespace pkg
