#include "pkg/recipe.h"

#include <algorithm>

#include "pkg/checksum.h"
#include "probe/gfx_target.h"
#include "probe/override_rules.h"

namespace pkg {

namespace {

constexpr const char* state_dir = "/var/lib/ollama";

bool under_state_dir(const std::string& dir) {
    return dir == state_dir || dir.rfind(std::string(state_dir) + "/", 0) == 0;
}

std::string git_source(const std::string& name, const GitPin& pin) {
    // A commit pins the checkout; a bare tag (llama.cpp before `ollama-pkg update` resolved it) can move.
    return name + "::git+" + pin.repository + (pin.commit.empty() ? "#tag=" + pin.tag : "#commit=" + pin.commit);
}

// What the configured GPUs need at run time. A target ROCm has no kernels for runs as a compatible
// one (probe's rules); that target is then built too, since the runtime will ask for its code.
struct OverridePlan {
    std::string env_lines;
    std::vector<std::string> build_targets;
};

OverridePlan plan_overrides(const Config& config) {
    OverridePlan plan;
    if (config.gpu_targets.empty()) {
        plan.env_lines =
            "# HSA_OVERRIDE_GFX_VERSION: not set. The package was built for the GPUs rocm-probe found on the build\n"
            "# machine; run `rocm-probe --format env` to see whether yours needs a value here.\n";
        return plan;
    }
    std::vector<std::string> values;
    std::size_t needing = 0;
    for (const auto& target : config.gpu_targets) {
        const auto add_target = [&](const std::string& t) {
            if (std::find(plan.build_targets.begin(), plan.build_targets.end(), t) == plan.build_targets.end())
                plan.build_targets.push_back(t);
        };
        add_target(target);
        const auto gfx = probe::parse_gfx_name(target.substr(0, target.find(':')));
        if (!gfx) continue;
        const auto advice = probe::advise_override(*gfx, std::nullopt);
        plan.env_lines += "# " + target + ": " + advice.rule + "\n";
        if (!advice.run_as) continue;
        ++needing;
        add_target(probe::gfx_name(*advice.run_as));
        const auto v = probe::override_string(*advice.run_as);
        if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
    }
    if (values.size() == 1 && needing == config.gpu_targets.size())
        plan.env_lines += "HSA_OVERRIDE_GFX_VERSION=" + values.front() + "\n";
    else if (!values.empty())
        plan.env_lines +=
            "# GPUs that run natively beside GPUs that need an override: a global HSA_OVERRIDE_GFX_VERSION\n"
            "# would re-target all of them. Set HSA_OVERRIDE_GFX_VERSION_<node> per GPU as\n"
            "# `rocm-probe --format env` prints them.\n";
    return plan;
}

std::string extra_environment(const Config& config) {
    std::string out;
    for (const auto& [key, value] : config.service.environment) out += key + "=" + value + "\n";
    return out.empty() ? "# (none: add variables under service.environment in ollama-airllm-rocm.yaml)\n" : out;
}

}  // namespace

std::string bash_array(const std::string& name, const std::vector<std::string>& words) {
    std::vector<std::string> quoted;
    std::size_t total = name.size() + 3;
    for (const auto& w : words) {
        quoted.push_back("'" + w + "'");
        total += w.size() + 3;
    }
    const std::string separator = total <= 100 ? " " : "\n" + std::string(name.size() + 2, ' ');
    std::string out;
    for (const auto& q : quoted) out += (out.empty() ? "" : separator) + q;
    return out;
}

Recipe make_recipe(const Config& config) {
    Recipe r;
    r.pkgver = pkgver_from_tag(config.upstream.tag);
    r.pkgrel = std::to_string(config.pkgrel);
    r.pkgdesc = "Create, run and share large language models with ROCm, and run models larger than VRAM";
    r.url = "https://github.com/ollama/ollama";
    r.install = r.pkgname + ".install";
    r.arch = {"x86_64"};
    r.license = {"MIT"};
    // ollama-airllm links cpp-httplib, ICU, PCRE2 and OpenSSL (blob digests) at run time.
    r.depends = {"cpp-httplib", "gcc-libs", "glibc", "hip-runtime-amd", "hipblas",
                 "icu",         "openssl",  "pcre2", "rocblas",         "rocm-smi-lib"};
    r.makedepends = {"boost",         "cmake",   "cpp-httplib", "git",   "go",           "hipblas",        "libarchive",
                     "nlohmann-json", "openssl", "pacman",      "pcre2", "rocm-smi-lib", "rocm-toolchain", "yaml-cpp"};
    r.checkdepends = {"doctest", "fakeroot", "python", "zstd"};
    r.optdepends = {"rocminfo: rocminfo and rocm_agent_enumerator, to compare with rocm-probe"};
    r.provides = {"ollama=" + r.pkgver, "ollama-rocm=" + r.pkgver};
    r.conflicts = {"ollama", "ollama-rocm"};
    r.backup = {"etc/default/ollama"};
    // Go's external linker and makepkg's LTO flags do not mix (Arch's own ollama sets the same).
    r.options = {"!lto"};
    return r;
}

void add_sources(Recipe& recipe, const Config& config, const std::vector<LocalSource>& local_files) {
    recipe.sources.push_back({git_source("ollama", config.upstream), "SKIP"});
    recipe.sources.push_back({git_source("llama.cpp", config.llama_cpp), "SKIP"});
    for (const auto& file : local_files) recipe.sources.push_back({file.name, b2sum_hex(file.contents)});
}

Variables companion_variables(const Config& config, const std::vector<std::string>& patch_names) {
    Variables v;
    v["maintainer"] = config.maintainer.empty() ? "ollama-airllm-rocm developers" : config.maintainer;
    v["upstream_tag"] = config.upstream.tag;
    v["upstream_commit"] = config.upstream.commit;
    v["llama_cpp_tag"] = config.llama_cpp.tag;
    const auto overrides = plan_overrides(config);
    std::string targets;
    for (const auto& t : overrides.build_targets) targets += (targets.empty() ? "" : ";") + t;
    v["gpu_targets"] = targets.empty() ? "auto" : targets;
    std::string patches;
    for (const auto& p : patch_names) patches += (patches.empty() ? "" : " ") + std::string("'") + p + "'";
    v["patch_files"] = patches;

    // systemd units and tmpfiles.d expand %-specifiers: a literal % is written %%.
    std::string models;
    for (const char ch : config.service.models_dir) models += ch == '%' ? std::string("%%") : std::string(1, ch);
    v["listen"] = config.service.listen;
    v["models_dir"] = config.service.models_dir;
    // ProtectSystem=strict makes everything read-only but these; a drive mounted elsewhere must be
    // writable and mounted before the service starts.
    v["service_models_lines"] = under_state_dir(models) ? "ReadWritePaths=" + std::string(state_dir)
                                                        : "ReadWritePaths=" + std::string(state_dir) + " " + models;
    v["unit_mount_lines"] = under_state_dir(models) ? "" : "RequiresMountsFor=" + models + "\n";
    // tmpfiles must not create a folder where a drive will be mounted: it would land on the root disk.
    v["tmpfiles_models_line"] = under_state_dir(models) || models == state_dir
                                    ? (models == state_dir ? "" : "d " + models + " 0750 ollama ollama -\n")
                                    : "# " + models + " is outside " + state_dir +
                                          ": create it on the mounted drive yourself (see the install message)\n";
    v["models_note"] =
        under_state_dir(models)
            ? ""
            : "  Models live in " + config.service.models_dir + ", outside " + state_dir +
                  ". The service runs as user 'ollama', which needs\n"
                  "  write access there and search (x) access on every parent folder:\n"
                  "    sudo install -d -o ollama -g ollama -m 0750 '" +
                  config.service.models_dir +
                  "'\n"
                  "  Drives that udisks mounts under /run/media/<you>/ are private to your login (mode 0700):\n"
                  "  the service cannot enter them. Mount the drive at a fixed place in /etc/fstab instead,\n"
                  "  or set UDISKS_FILESYSTEM_SHARED=1 for it in a udev rule (it then mounts under /media).\n";
    v["extra_env"] = extra_environment(config);
    v["compression"] = config.runner.compression;
    v["device"] = config.runner.device;
    v["force"] = config.runner.force ? "1" : "0";
    v["gguf"] = config.runner.gguf;
    v["vram_budget_line"] = config.runner.vram_budget == "auto"
                                ? "# AIRLLM_VRAM_BUDGET: unset, the runner uses free VRAM minus a reserve"
                                : "AIRLLM_VRAM_BUDGET=" + config.runner.vram_budget;
    v["hip_visible_devices_line"] = config.service.hip_visible_devices.empty()
                                        ? "# HIP_VISIBLE_DEVICES: unset, every GPU ROCm sees is used"
                                        : "HIP_VISIBLE_DEVICES=" + config.service.hip_visible_devices;
    v["hsa_override_lines"] = overrides.env_lines;
    return v;
}

void add_pkgbuild_variables(Variables& vars, const Recipe& r) {
    vars["pkgname"] = r.pkgname;
    vars["pkgver"] = r.pkgver;
    vars["pkgrel"] = r.pkgrel;
    vars["pkgdesc"] = r.pkgdesc;
    vars["url"] = r.url;
    vars["install"] = r.install;
    const std::pair<const char*, const std::vector<std::string>*> arrays[] = {
        {"arch", &r.arch},
        {"license", &r.license},
        {"depends", &r.depends},
        {"makedepends", &r.makedepends},
        {"checkdepends", &r.checkdepends},
        {"optdepends", &r.optdepends},
        {"provides", &r.provides},
        {"conflicts", &r.conflicts},
        {"backup", &r.backup},
        {"options", &r.options},
    };
    for (const auto& [name, words] : arrays) vars[name] = bash_array(name, *words);
    std::vector<std::string> sources, sums;
    for (const auto& s : r.sources) {
        sources.push_back(s.entry);
        sums.push_back(s.checksum);
    }
    vars["source"] = bash_array("source", sources);
    vars["b2sums"] = bash_array("b2sums", sums);
}

}  // namespace pkg
