// ollama-pkg: generates, builds, updates, inspects and verifies the ollama-airllm-rocm package.
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "pkg/commands.h"

namespace {

struct Subcommand {
    std::string_view name;
    int (*run)(const std::vector<std::string>&, pkg::CommandIo);
    std::string_view summary;
};

constexpr Subcommand subcommands[] = {
    {"generate", pkg::run_generate,
     "render templates/ and ollama-airllm-rocm.yaml into the recipe (--check: diff only)"},
    {"inspect", pkg::run_inspect, "read a built .pkg.tar.zst: .PKGINFO, files, expected layout"},
    {"verify", pkg::run_verify, "install a built package into a scratch root and check it with libalpm and pacman"},
    {"update", pkg::run_update, "move the recipe to upstream's newest release, or bump pkgrel after a ROCm upgrade"},
    {"build", pkg::run_build, "check prerequisites and run makepkg with progress and a log (--install: pacman -U)"},
};

void usage(std::ostream& out) {
    out << "usage: ollama-pkg <command> [options]\n\ncommands:\n";
    for (const auto& s : subcommands)
        out << "  " << s.name << std::string(10 - s.name.size(), ' ') << s.summary << '\n';
    out << "\nollama-pkg <command> --help describes a command's options.\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(std::cerr);
        return pkg::exit_usage;
    }
    const std::string_view name = argv[1];
    if (name == "-h" || name == "--help") {
        usage(std::cout);
        return pkg::exit_ok;
    }
    const std::vector<std::string> args(argv + 2, argv + argc);
    for (const auto& s : subcommands) {
        if (s.name != name) continue;
        try {
            return s.run(args, {std::cout, std::cerr});
        } catch (const std::exception& e) {
            std::cerr << "ollama-pkg " << name << ": error: " << e.what() << '\n';
            return pkg::exit_failed;
        }
    }
    std::cerr << "ollama-pkg: unknown command '" << name << "'\n";
    usage(std::cerr);
    return pkg::exit_usage;
}
