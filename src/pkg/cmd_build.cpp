// ollama-pkg build [--install] [--verbose] [--log FILE] [--config FILE] [-- MAKEPKG_ARGS...]
#include "pkg/build.h"
#include "pkg/commands.h"

namespace pkg {

namespace {

constexpr const char* build_usage_text =
    R"(usage: ollama-pkg build [--install] [--verbose] [--log FILE] [--config FILE] [-- MAKEPKG_ARGS...]

Checks the build dependencies in the local pacman database, then runs makepkg in the recipe's folder
with a progress line per makepkg step and the whole output in a log file. --install then inspects and
verifies the package and runs `sudo pacman -U` on it. Run as your own user, not root.
Environment: MAKEPKG, PACMAN, FAKEROOT, SUDO name the programs to run.

Exit status: 0 built (and installed), 1 failed, 2 usage, 130 interrupted.
)";

}  // namespace

int run_build(const std::vector<std::string>& args, CommandIo io) {
    BuildOptions options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        const auto value = [&](std::filesystem::path& out) {
            if (i + 1 >= args.size()) return false;
            out = args[++i];
            return true;
        };
        if (a == "-h" || a == "--help") {
            io.out << build_usage_text;
            return build_ok;
        }
        if (a == "--") {
            options.makepkg_args.assign(args.begin() + static_cast<long>(i) + 1, args.end());
            break;
        }
        if (a == "--install")
            options.install = true;
        else if (a == "--verbose" || a == "-v")
            options.verbose = true;
        else if ((a == "--log" && value(options.log)) || (a == "--config" && value(options.config)) ||
                 (a == "--root" && value(options.root)) || (a == "--dbpath" && value(options.dbpath))) {
        } else {
            io.err << "ollama-pkg build: unknown or incomplete argument '" << a << "'\n" << build_usage_text;
            return build_usage;
        }
    }
    return build_package(options, io.out, io.err);
}

}  // namespace pkg
