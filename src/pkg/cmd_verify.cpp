// ollama-pkg verify FILE [--keep ROOT]
#include <unistd.h>

#include <cstdlib>

#include "pkg/commands.h"
#include "pkg/verify.h"

namespace pkg {

namespace {

constexpr const char* verify_usage = R"(usage: ollama-pkg verify FILE [--keep ROOT]

Installs a built package into a fresh scratch root with pacman (-U -dd --noscriptlet; under
fakeroot when not root) and checks it: metadata through libalpm, the local database, file
types and modes, pacman -Qkk, an upgrade over an edited etc/default/ollama (the edit stays,
.pacnew appears when the defaults change), and pacman -R (files gone, var/lib/ollama kept).

  --keep ROOT  install into ROOT (absent or empty) and keep it afterwards
  -h, --help   this text

Environment: PACMAN, FAKEROOT name the programs to run (default: pacman, fakeroot in PATH).

Exit status: 0 every step passed, 1 a step failed, 2 usage error, unreadable package or
missing tools.
)";

int usage_error(CommandIo io, const std::string& message) {
    io.err << "ollama-pkg verify: " << message << "\n(ollama-pkg verify --help shows the usage)\n";
    return exit_usage;
}

const char* status_word(StepStatus s) {
    switch (s) {
        case StepStatus::ok: return "ok";
        case StepStatus::failed: return "FAILED";
        case StepStatus::skipped: return "skipped";
    }
    return "FAILED";
}

}  // namespace

int run_verify(const std::vector<std::string>& args, CommandIo io) {
    VerifyOptions options;
    std::string file;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "-h" || arg == "--help") {
            io.out << verify_usage;
            return exit_ok;
        } else if (arg == "--keep") {
            if (i + 1 >= args.size()) return usage_error(io, "--keep needs a folder");
            options.keep_root = args[++i];
        } else if (!arg.empty() && arg.front() == '-') {
            return usage_error(io, "unknown option '" + arg + "'");
        } else if (!file.empty()) {
            return usage_error(io, "one package file at a time (got '" + file + "' and '" + arg + "')");
        } else {
            file = arg;
        }
    }
    if (file.empty()) return usage_error(io, "which package file? (ollama-pkg verify FILE)");
    options.package = file;
    if (const char* p = std::getenv("PACMAN"); p && *p) options.pacman = p;
    if (const char* f = std::getenv("FAKEROOT"); f && *f) options.fakeroot = f;
    options.use_fakeroot = ::geteuid() != 0;

    io.out << "verify: " << file << '\n';
    const auto report = verify_package(options, [&](const VerifyStep& step) {
        io.out << "  " << status_word(step.status) << std::string(9 - std::string(status_word(step.status)).size(), ' ')
               << step.name << ": " << step.detail << '\n';
        for (const auto& problem : step.problems) io.out << "           - " << problem << '\n';
        io.out.flush();
    });
    if (!report) {
        io.err << "ollama-pkg verify: error: " << report.error().message << '\n';
        return exit_usage;
    }
    if (options.keep_root) io.out << "scratch root kept at " << report->root.string() << '\n';
    if (report->passed()) {
        io.out << "verify: " << report->package_name << ' ' << report->package_version << ": all "
               << report->steps.size() << " steps ok\n";
        return exit_ok;
    }
    std::size_t failed = 0;
    for (const auto& step : report->steps) {
        if (step.status != StepStatus::failed) continue;
        ++failed;
        for (const auto& problem : step.problems)
            io.err << "ollama-pkg verify: " << step.name << ": " << problem << '\n';
    }
    io.out << "verify: " << report->package_name << ' ' << report->package_version << ": " << failed << " of "
           << report->steps.size() << " steps FAILED\n";
    return exit_failed;
}

}  // namespace pkg
