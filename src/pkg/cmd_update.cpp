// ollama-pkg update [--dry-run] [--rc] [--config FILE]
// ollama-pkg update --rocm [--package FILE] [--root DIR --dbpath DIR] [--dry-run] [--config FILE]
#include "pkg/commands.h"
#include "pkg/update.h"

namespace pkg {

namespace {

constexpr const char* update_usage = R"(usage: ollama-pkg update [--dry-run] [--rc] [--config FILE]
       ollama-pkg update --rocm [--package FILE] [--root DIR] [--dbpath DIR] [--dry-run] [--config FILE]

Moves the recipe to upstream Ollama's newest release: tag, commit, llama.cpp tag and commit, every
patch checked against the new tag, pkgrel reset to 1, files regenerated. Nothing is written unless
every step succeeds.
--rocm instead compares the ROCm packages a built package was linked against (its .BUILDINFO) with
the installed ones and bumps pkgrel when they differ, so that the next build relinks.

Exit status (as pkgctl version check): 0 up to date, 2 updated (or out of date with --dry-run),
3 failure.
)";

}  // namespace

int run_update(const std::vector<std::string>& args, CommandIo io) {
    RocmOptions options;
    bool rocm = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        const auto value = [&](std::filesystem::path& out) {
            if (i + 1 >= args.size()) return false;
            out = args[++i];
            return true;
        };
        if (a == "-h" || a == "--help") {
            io.out << update_usage;
            return exit_ok;
        }
        if (a == "--dry-run")
            options.update.dry_run = true;
        else if (a == "--rc")
            options.update.include_rc = true;
        else if (a == "--rocm")
            rocm = true;
        else if ((a == "--config" && value(options.update.config)) || (a == "--package" && value(options.package)) ||
                 (a == "--root" && value(options.root)) || (a == "--dbpath" && value(options.dbpath))) {
        } else {
            io.err << "ollama-pkg update: unknown or incomplete argument '" << a << "'\n" << update_usage;
            return update_failed;
        }
    }
    return rocm ? update_for_rocm(options, io.out, io.err) : update_upstream(options.update, io.out, io.err);
}

}  // namespace pkg
