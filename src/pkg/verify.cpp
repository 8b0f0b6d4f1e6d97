#include "pkg/verify.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "common/subprocess.h"
#include "pkg/package_layout.h"
#include "pkg/sys/alpm_handle.h"
#include "pkg/sys/archive_reader.h"

namespace pkg {

namespace {

namespace fs = std::filesystem;

// A fresh folder from mkdtemp, removed with everything in it when this goes away.
class ScratchDir {
  public:
    static common::Result<ScratchDir> create() {
        std::error_code ec;
        const fs::path base = fs::temp_directory_path(ec);
        std::string pattern = ((ec ? fs::path("/tmp") : base) / "ollama-pkg-verify-XXXXXX").string();
        if (!::mkdtemp(pattern.data()))
            return common::make_error("cannot create a scratch folder " + pattern + ": " + std::strerror(errno));
        return ScratchDir(pattern);
    }
    ScratchDir(ScratchDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
    ScratchDir& operator=(ScratchDir&&) = delete;
    ~ScratchDir() {
        std::error_code ec;
        if (!path_.empty()) fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

  private:
    explicit ScratchDir(fs::path path) : path_(std::move(path)) {}
    fs::path path_;
};

// The state folder the service owns at run time, a stand-in for a model the user pulled into it, and
// the edit verify makes to the environment file.
constexpr std::string_view state_dir = "var/lib/ollama";
constexpr std::string_view model_marker = "var/lib/ollama/models/blobs/sha256-ollama-pkg-verify";
constexpr std::string_view edit_line = "OLLAMA_PKG_VERIFY_EDIT=1  # a user's edit, must survive upgrades";

struct Context {
    const VerifyOptions& options;
    fs::path root;
    fs::path dbpath;
    fs::path fakeroot_state;  // fakeroot -s/-i file, so ownership faked at install is seen by -Qkk
    std::string pacman;
    std::string fakeroot;
};

common::Result<common::SubprocessResult> run_pacman(const Context& ctx, const std::vector<std::string>& args) {
    std::vector<std::string> argv;
    if (ctx.options.use_fakeroot) {
        argv = {ctx.fakeroot};
        if (fs::exists(ctx.fakeroot_state)) argv.insert(argv.end(), {"-i", ctx.fakeroot_state.string()});
        argv.insert(argv.end(), {"-s", ctx.fakeroot_state.string(), "--"});
    }
    argv.push_back(ctx.pacman);
    argv.insert(argv.end(), args.begin(), args.end());
    // The hook folder in /etc is not relative to --root: point it into the scratch root.
    argv.insert(argv.end(), {"--root", ctx.root.string(), "--dbpath", ctx.dbpath.string(), "--hookdir",
                             (ctx.root / "etc/pacman.d/hooks").string()});
    common::SubprocessOptions options;
    options.extra_env = {"LC_ALL=C"};  // pacman's summary lines are matched in English
    options.timeout = ctx.options.timeout;
    auto result = common::run_subprocess(argv, options);
    if (!result) return result.error();
    if (result->timed_out)
        return common::make_error(common::describe_command(argv) + ": no result after " +
                                  std::to_string(ctx.options.timeout.count()) + " s");
    return result;
}

std::string tail(const std::string& text, std::size_t lines = 4) {
    std::vector<std::string> all;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) all.push_back(line);
    std::string out;
    for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
        out += (out.empty() ? "" : " | ") + all[i];
    return out;
}

std::string_view without_slash(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    return path;
}

bool exists_no_follow(const fs::path& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

VerifyStep finish(VerifyStep step, const std::string& ok_detail) {
    if (!step.problems.empty()) {
        step.status = StepStatus::failed;
        step.detail = std::to_string(step.problems.size()) + (step.problems.size() == 1 ? " problem" : " problems");
    } else {
        step.detail = ok_detail;
    }
    return step;
}

VerifyStep check_metadata(const sys::AlpmPackage& pkg) {
    VerifyStep step{"package metadata", StepStatus::ok, {}, {}};
    if (pkg.name.empty()) step.problems.push_back(".PKGINFO: no pkgname");
    if (pkg.version.find('-') == std::string::npos)
        step.problems.push_back(".PKGINFO: pkgver '" + pkg.version + "' has no -pkgrel");
    if (pkg.arch.empty()) step.problems.push_back(".PKGINFO: no arch");
    if (pkg.files.empty()) step.problems.push_back("the package installs no files");
    return finish(std::move(step), pkg.name + " " + pkg.version + " (" + pkg.arch + "), " +
                                       std::to_string(pkg.files.size()) + " files and folders");
}

VerifyStep run_pacman_step(const Context& ctx, std::string name, const std::vector<std::string>& args,
                           std::string ok_detail) {
    VerifyStep step{std::move(name), StepStatus::ok, {}, {}};
    const auto r = run_pacman(ctx, args);
    if (!r)
        step.problems.push_back(r.error().message);
    else if (r->exit_code != 0)
        step.problems.push_back("pacman exited with " + std::to_string(r->exit_code) + ": " + tail(r->err + r->out));
    return finish(std::move(step), std::move(ok_detail));
}

char type_of(std::uint32_t st_mode) {
    if (S_ISDIR(st_mode)) return 'd';
    if (S_ISLNK(st_mode)) return 'l';
    if (S_ISREG(st_mode)) return 'f';
    return '?';
}

// The local database entry and the files on disk against the package file.
VerifyStep check_installed(const Context& ctx, const sys::AlpmPackage& expected) {
    VerifyStep step{"local database and files", StepStatus::ok, {}, {}};
    auto handle = sys::AlpmHandle::open(ctx.root, ctx.dbpath);
    if (!handle) {
        step.problems.push_back(handle.error().message);
        return finish(std::move(step), "");
    }
    auto local = handle->local_package(expected.name);
    if (!local) {
        step.problems.push_back(local.error().message);
        return finish(std::move(step), "");
    }
    if (!*local) {
        step.problems.push_back(expected.name + ": not in the local database of " + ctx.root.string());
        return finish(std::move(step), "");
    }
    const sys::AlpmPackage& installed = **local;
    if (sys::vercmp(installed.version, expected.version) != 0)
        step.problems.push_back(expected.name + ": local database has version " + installed.version + ", package has " +
                                expected.version);
    std::set<std::string> want, have;
    for (const auto& f : expected.files) want.insert(f.path);
    for (const auto& f : installed.files) have.insert(f.path);
    for (const auto& p : want)
        if (!have.count(p)) step.problems.push_back(p + ": in the package but not in the local file list");
    for (const auto& p : have)
        if (!want.count(p)) step.problems.push_back(p + ": in the local file list but not in the package");
    for (const auto& f : expected.files) {
        const fs::path on_disk = ctx.root / std::string(without_slash(f.path));
        struct stat st {};
        if (::lstat(on_disk.c_str(), &st) != 0) {
            step.problems.push_back(f.path + ": not on disk after install");
            continue;
        }
        if (type_of(st.st_mode) != type_of(f.mode))
            step.problems.push_back(f.path + ": on disk a '" + std::string(1, type_of(st.st_mode)) +
                                    "', package has a '" + std::string(1, type_of(f.mode)) + "'");
        else if (!S_ISLNK(st.st_mode) && (st.st_mode & 07777) != (f.mode & 07777))
            step.problems.push_back(f.path + ": mode " + mode_string(st.st_mode) + " on disk, package has " +
                                    mode_string(f.mode));
        // makepkg packs everything as root:root. Under fakeroot the real owner is ours, and pacman -Qkk,
        // which runs inside the same fakeroot state, checks ownership instead.
        if (!ctx.options.use_fakeroot && (st.st_uid != 0 || st.st_gid != 0))
            step.problems.push_back(f.path + ": owned by " + std::to_string(st.st_uid) + ":" +
                                    std::to_string(st.st_gid) + " on disk, packages install files as root:root");
    }
    for (const auto& b : expected.backup) {
        const sys::AlpmBackup* lb = installed.find_backup(b.path);
        if (!lb)
            step.problems.push_back(b.path + ": backup file missing from the local database");
        else if (lb->hash.empty())
            step.problems.push_back(b.path + ": local database records no hash (upgrades could not detect edits)");
    }
    return finish(std::move(step), installed.name + " " + installed.version + ", " + std::to_string(want.size()) +
                                       " paths, modes and owners match, " + std::to_string(expected.backup.size()) +
                                       " backup file(s) recorded");
}

VerifyStep check_qkk(const Context& ctx, const std::string& name) {
    VerifyStep step{"pacman -Qkk", StepStatus::ok, {}, {}};
    const auto r = run_pacman(ctx, {"-Qkk", name});
    if (!r) {
        step.problems.push_back(r.error().message);
        return finish(std::move(step), "");
    }
    if (r->exit_code != 0)
        step.problems.push_back("pacman -Qkk exited with " + std::to_string(r->exit_code) + ": " +
                                tail(r->err + r->out));
    std::istringstream lines(r->out + r->err);
    for (std::string line; std::getline(lines, line);)
        if (line.find("warning") != std::string::npos || line.find("mismatch") != std::string::npos ||
            line.find("error") != std::string::npos)
            step.problems.push_back(line);
    if (r->exit_code == 0 && r->out.find(" 0 altered files") == std::string::npos)
        step.problems.push_back("pacman -Qkk did not report '0 altered files': " + tail(r->out));
    return finish(std::move(step), tail(r->out, 1));
}

// Rewrites the recorded original hash of `path` in the local database, as if the installed release
// had shipped a different default file.
bool pretend_older_default(const Context& ctx, const sys::AlpmPackage& pkg, std::string_view path) {
    const fs::path files = ctx.dbpath / "local" / (pkg.name + "-" + pkg.version) / "files";
    std::string text = read_text(files);
    const std::string key = std::string(path) + "\t";
    const std::size_t at = text.find("\n" + key);
    if (at == std::string::npos) return false;
    const std::size_t hash_start = at + 1 + key.size();
    const std::size_t hash_end = text.find('\n', hash_start);
    text.replace(hash_start, hash_end - hash_start, std::string(32, '0'));
    std::ofstream out(files, std::ios::binary | std::ios::trunc);
    out << text;
    return static_cast<bool>(out);
}

VerifyStep check_upgrade(const Context& ctx, const sys::AlpmPackage& pkg) {
    VerifyStep step{"upgrade keeps an edited etc/default/ollama", StepStatus::ok, {}, {}};
    const std::string env(env_file);
    if (!pkg.find_backup(env)) {
        step.problems.push_back(env + ": not in the package's backup list, so pacman overwrites user edits");
        return finish(std::move(step), "");
    }
    const fs::path env_path = ctx.root / env;
    const fs::path pacnew = ctx.root / (env + ".pacnew");
    {
        std::ofstream out(env_path, std::ios::app);
        out << edit_line << '\n';
        if (!out) {
            step.problems.push_back(env_path.string() + ": cannot append the test edit");
            return finish(std::move(step), "");
        }
    }
    const std::vector<std::string> reinstall = {"-U", "--noconfirm", "-dd", "--noscriptlet",
                                                fs::absolute(ctx.options.package).string()};
    // 1. Same release again: the shipped file is unchanged, so pacman keeps the edit and writes no .pacnew.
    auto r = run_pacman(ctx, reinstall);
    if (!r || r->exit_code != 0) {
        step.problems.push_back("pacman -U (reinstall): " + (r ? tail(r->err + r->out) : r.error().message));
        return finish(std::move(step), "");
    }
    if (read_text(env_path).find(edit_line) == std::string::npos)
        step.problems.push_back(env + ": the user's edit was lost on reinstall");
    if (exists_no_follow(pacnew))
        step.problems.push_back(env + ".pacnew: written although the shipped file is unchanged");
    // 2. A release whose default file changed: pacman keeps the edit and puts the new file beside it.
    if (!pretend_older_default(ctx, pkg, env)) {
        step.problems.push_back(env + ": no backup hash for it in the local database files list");
        return finish(std::move(step), "");
    }
    r = run_pacman(ctx, reinstall);
    if (!r || r->exit_code != 0) {
        step.problems.push_back("pacman -U (changed defaults): " + (r ? tail(r->err + r->out) : r.error().message));
        return finish(std::move(step), "");
    }
    if (read_text(env_path).find(edit_line) == std::string::npos)
        step.problems.push_back(env + ": the user's edit was lost when the defaults changed");
    if (!exists_no_follow(pacnew))
        step.problems.push_back(env + ".pacnew: not written when the shipped defaults changed");
    else if (read_text(pacnew).find(edit_line) != std::string::npos)
        step.problems.push_back(env + ".pacnew: holds the user's edit instead of the shipped file");
    return finish(std::move(step), "edit kept on reinstall (no .pacnew); edit kept and " + env +
                                       ".pacnew written when the defaults change");
}

VerifyStep check_remove(const Context& ctx, const sys::AlpmPackage& pkg) {
    VerifyStep step{"remove keeps models and state", StepStatus::ok, {}, {}};
    // A model the service downloaded: state the package never owned, which removal must keep.
    const fs::path marker = ctx.root / std::string(model_marker);
    std::error_code ec;
    fs::create_directories(marker.parent_path(), ec);
    std::ofstream(marker) << "model data\n";
    if (!fs::exists(marker)) {
        step.problems.push_back(marker.string() + ": cannot create the stand-in model");
        return finish(std::move(step), "");
    }
    const auto r = run_pacman(ctx, {"-R", "--noconfirm", "--noscriptlet", pkg.name});
    if (!r || r->exit_code != 0) {
        step.problems.push_back("pacman -R: " + (r ? tail(r->err + r->out) : r.error().message));
        return finish(std::move(step), "");
    }
    if (auto handle = sys::AlpmHandle::open(ctx.root, ctx.dbpath); !handle) {
        step.problems.push_back(handle.error().message);
    } else if (auto local = handle->local_package(pkg.name); !local) {
        step.problems.push_back(local.error().message);
    } else if (*local) {
        step.problems.push_back(pkg.name + ": still in the local database after pacman -R");
    }
    std::size_t removed = 0;
    for (const auto& f : pkg.files) {
        if (f.path.back() == '/') continue;  // folders stay while anything else is in them
        if (exists_no_follow(ctx.root / f.path))
            step.problems.push_back(f.path + ": still on disk after pacman -R");
        else
            ++removed;
    }
    if (!fs::is_directory(ctx.root / std::string(state_dir)))
        step.problems.push_back(std::string(state_dir) + ": removed with the package (models and state must stay)");
    else if (!fs::exists(marker))
        step.problems.push_back(std::string(model_marker) + ": a downloaded model was deleted by pacman -R");
    const bool pacsave = exists_no_follow(ctx.root / (std::string(env_file) + ".pacsave"));
    return finish(std::move(step), std::to_string(removed) + " files removed, " + std::string(state_dir) + " kept" +
                                       (pacsave ? ", edited " + std::string(env_file) + " saved as .pacsave" : ""));
}

common::Result<fs::path> prepare_root(const VerifyOptions& options, const ScratchDir& scratch) {
    if (!options.keep_root) return scratch.path() / "root";
    const fs::path root = fs::absolute(*options.keep_root);
    std::error_code ec;
    if (fs::exists(root, ec) && (!fs::is_directory(root, ec) || !fs::is_empty(root, ec)))
        return common::make_error("--keep " + root.string() + ": exists and is not an empty folder");
    return root;
}

}  // namespace

bool VerifyReport::passed() const {
    return std::all_of(steps.begin(), steps.end(), [](const VerifyStep& s) { return s.status == StepStatus::ok; });
}

common::Result<VerifyReport> verify_package(const VerifyOptions& options,
                                            const std::function<void(const VerifyStep&)>& on_step) {
    const std::string version = sys::alpm_library_version();
    if (!sys::alpm_version_supported(version))
        return common::make_error("libalpm " + version + " is not supported (written for libalpm 13 to 15)");
    std::error_code ec;
    if (!fs::is_regular_file(options.package, ec))
        return common::make_error(options.package.string() + ": no such package file");
    const char* path_env = std::getenv("PATH");
    const std::string path_list = path_env ? path_env : "/usr/bin:/bin";
    auto pacman = common::find_program(options.pacman, path_list);
    if (!pacman) return common::make_error("pacman: " + pacman.error().message + " (set PACMAN to its path)");
    std::string fakeroot;
    if (options.use_fakeroot) {
        auto found = common::find_program(options.fakeroot, path_list);
        if (!found)
            return common::make_error("fakeroot (needed when not root): " + found.error().message +
                                      " (set FAKEROOT to its path)");
        fakeroot = found->string();
    }

    auto scratch = ScratchDir::create();
    if (!scratch) return scratch.error();
    auto root = prepare_root(options, *scratch);
    if (!root) return root.error();
    Context ctx{options,          *root,   *root / "var/lib/pacman", scratch->path() / "fakeroot.state",
                pacman->string(), fakeroot};
    fs::create_directories(ctx.dbpath, ec);
    if (ec)
        return common::make_error(ctx.dbpath.string() + ": cannot create the scratch database folder: " + ec.message());
    // Without --keep the root lives inside the scratch folder and goes with it.

    sys::AlpmPackage pkg;
    {
        auto handle = sys::AlpmHandle::open(ctx.root, ctx.dbpath);
        if (!handle) return handle.error();
        auto loaded = handle->load_package(options.package);
        if (!loaded) return loaded.error();
        pkg = std::move(*loaded);
    }  // released before pacman writes the database

    VerifyReport report;
    report.package_name = pkg.name;
    report.package_version = pkg.version;
    report.root = ctx.root;
    const auto add = [&](VerifyStep step) {
        on_step(step);
        report.steps.push_back(std::move(step));
        return report.steps.back().status == StepStatus::ok;
    };
    add({"libalpm", StepStatus::ok, "libalpm " + version, {}});
    bool installed = false;
    if (add(check_metadata(pkg)))
        installed = add(run_pacman_step(
            ctx, "install", {"-U", "--noconfirm", "-dd", "--noscriptlet", fs::absolute(options.package).string()},
            "pacman -U into " + ctx.root.string()));
    else
        add({"install", StepStatus::skipped, "not run: the package metadata is not sane", {}});
    if (installed) {
        add(check_installed(ctx, pkg));
        add(check_qkk(ctx, pkg.name));
        add(check_upgrade(ctx, pkg));
        add(check_remove(ctx, pkg));
    } else {
        for (const char* name : {"local database and files", "pacman -Qkk",
                                 "upgrade keeps an edited etc/default/ollama", "remove keeps models and state"})
            add({name, StepStatus::skipped, "not run: the package did not install", {}});
    }
    return report;
}

}  // namespace pkg
