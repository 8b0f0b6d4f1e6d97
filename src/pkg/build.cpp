#include "pkg/build.h"

#include <unistd.h>

#include <cstdlib>

#include "common/subprocess.h"
#include "pkg/config.h"
#include "pkg/generate.h"
#include "pkg/inspect.h"
#include "pkg/makepkg_runner.h"
#include "pkg/prerequisites.h"
#include "pkg/recipe.h"
#include "pkg/verify.h"

namespace pkg {

namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

// The package file makepkg just wrote, as `makepkg --packagelist` names it.
common::Result<fs::path> built_package(const std::string& makepkg, const fs::path& dir) {
    auto list = common::run_subprocess({makepkg, "--packagelist"}, {dir, {}, std::chrono::minutes(1)});
    if (!list) return list.error();
    std::string line;
    for (std::size_t start = 0; start < list->out.size();) {
        const auto nl = list->out.find('\n', start);
        line = list->out.substr(start, nl - start);
        if (fs::exists(line)) return fs::path(line);
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    return common::make_error("makepkg --packagelist names no existing package file in " + dir.string() + ": " +
                              list->out + list->err);
}

int install_built(const fs::path& package, std::ostream& out, std::ostream& err) {
    out << "checking " << package.filename().string() << " before installing it\n";
    auto inspected = inspect_package(package);
    if (!inspected) {
        err << "ollama-pkg build: " << inspected.error().message << '\n';
        return build_failed;
    }
    if (!inspected->layout_ok()) {
        err << "ollama-pkg build: " << inspected->failed_count()
            << " layout check(s) failed; not installing (ollama-pkg inspect " << package.string() << " shows them)\n";
        return build_failed;
    }
    out << "  inspect: layout ok\n";
    VerifyOptions verify;
    verify.package = package;
    verify.pacman = env_or("PACMAN", "pacman");
    verify.fakeroot = env_or("FAKEROOT", "fakeroot");
    verify.use_fakeroot = ::geteuid() != 0;
    auto report = verify_package(verify, [&](const VerifyStep& step) {
        out << "  verify: " << step.name << ": "
            << (step.status == StepStatus::ok       ? "ok"
                : step.status == StepStatus::failed ? "FAILED"
                                                    : "skipped")
            << '\n';
    });
    if (!report) {
        err << "ollama-pkg build: verify: " << report.error().message << '\n';
        return build_failed;
    }
    if (!report->passed()) {
        err << "ollama-pkg build: verify failed; not installing (ollama-pkg verify " << package.string()
            << " shows why)\n";
        return build_failed;
    }
    const std::vector<std::string> argv = {env_or("SUDO", "sudo"), env_or("PACMAN", "pacman"), "-U", package.string()};
    out << "installing: " << common::describe_command(argv) << '\n';
    auto run = common::run_subprocess(argv);
    if (!run) {
        err << "ollama-pkg build: " << run.error().message << '\n';
        return build_failed;
    }
    out << run->out;
    if (!run->ok()) {
        err << run->err << "ollama-pkg build: pacman -U failed (exit " << run->exit_code << ")\n";
        return build_failed;
    }
    return build_ok;
}

}  // namespace

int build_package(const BuildOptions& options, std::ostream& out, std::ostream& err) {
    if (::geteuid() == 0) {
        err << "ollama-pkg build: refusing to run as root: makepkg runs the PKGBUILD's code and will not do so as "
               "root.\n"
               "Run it as your own user; --install asks sudo for the one pacman -U step.\n";
        return build_usage;
    }
    const fs::path dir = options.config.has_parent_path() ? options.config.parent_path() : fs::path(".");
    auto config = load_config(options.config);
    if (!config) {
        err << "ollama-pkg build: " << config.error().message << '\n';
        return build_usage;
    }

    // Building a recipe that disagrees with its templates would build something nobody reviewed.
    const auto files = generate_recipe({options.config, dir / "templates", dir / "patches", dir});
    if (!files) {
        err << "ollama-pkg build: " << files.error().message << '\n';
        return build_failed;
    }
    for (const auto& status : compare_with_disk(*files, dir)) {
        if (status.up_to_date) continue;
        err << status.diff << "ollama-pkg build: " << status.name
            << " differs from what the templates give; run `ollama-pkg generate` first\n";
        return build_failed;
    }

    out << "prerequisites\n";
    const Recipe recipe = make_recipe(*config);
    auto prereq = check_prerequisites(recipe, options.root, options.dbpath);
    if (!prereq) {
        err << "ollama-pkg build: " << prereq.error().message << '\n';
        return build_failed;
    }
    for (const auto& s : prereq->skipped) out << "  skipped: " << s << '\n';
    if (prereq->database_present) {
        out << "  ROCm " << prereq->rocm_version << ", Go " << prereq->go_version << ", " << prereq->satisfied.size()
            << " dependencies satisfied\n";
        if (!prereq->missing.empty()) {
            err << "ollama-pkg build: missing build dependencies; install them with:\n  "
                << install_command(prereq->missing) << '\n';
            return build_failed;
        }
    }

    const std::string makepkg = env_or("MAKEPKG", "makepkg");
    MakepkgRunOptions run_options;
    run_options.argv = {makepkg, "-f"};
    if (!prereq->database_present) run_options.argv.push_back("--nodeps");
    run_options.argv.insert(run_options.argv.end(), options.makepkg_args.begin(), options.makepkg_args.end());
    run_options.cwd = dir;
    run_options.log = options.log.empty() ? dir / "ollama-pkg-build.log" : options.log;
    run_options.echo = options.verbose;
    out << "building: " << common::describe_command(run_options.argv) << " (log: " << run_options.log.string() << ")\n";
    auto run = run_makepkg_with_progress(run_options, out);
    if (!run) {
        err << "ollama-pkg build: " << run.error().message << '\n';
        return build_failed;
    }
    if (run->interrupted) {
        err << "ollama-pkg build: interrupted; makepkg stopped (exit " << run->exit_code
            << "). Log: " << run_options.log.string() << '\n';
        return build_interrupted;
    }
    if (run->exit_code != 0) {
        const std::string step = run->steps.empty() ? "start-up" : run->steps.back().name;
        err << "ollama-pkg build: makepkg failed (exit " << run->exit_code << ") at: " << step << "\nlast lines:\n";
        for (const auto& line : run->last_lines) err << "  " << line << '\n';
        err << "full log: " << run_options.log.string() << '\n';
        return build_failed;
    }
    auto package = built_package(makepkg, dir);
    if (!package) {
        err << "ollama-pkg build: " << package.error().message << '\n';
        return build_failed;
    }
    out << "built " << package->string() << '\n';
    return options.install ? install_built(*package, out, err) : build_ok;
}

}  // namespace pkg
