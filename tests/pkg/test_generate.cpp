// Generation from templates: golden files, .SRCINFO against real makepkg, --check, atomic writes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "common/atomic_write.h"
#include "pkg/generate.h"
#include "pkg/line_diff.h"
#include "support/makepkg.h"
#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;
using test_support::TempTree;

namespace {

const fs::path source_dir = OAR_SOURCE_DIR;
const fs::path golden_dir = fs::path(OAR_FIXTURES) / "pkg/golden";

pkg::GenerateOptions options_for(const fs::path& config, const fs::path& patches, const fs::path& output) {
    return {config, source_dir / "templates", patches, output};
}

const pkg::GeneratedFile& file_named(const std::vector<pkg::GeneratedFile>& files, const std::string& name) {
    const auto it =
        std::find_if(files.begin(), files.end(), [&](const pkg::GeneratedFile& f) { return f.name == name; });
    REQUIRE(it != files.end());
    return *it;
}

// Set OAR_UPDATE_GOLDEN=1 to rewrite the expected files after an intended template change.
void check_golden(const std::string& case_name) {
    const auto dir = golden_dir / case_name;
    const auto files =
        pkg::generate_recipe(options_for(dir / "ollama-airllm-rocm.yaml", dir / "patches", dir / "expected"));
    REQUIRE_MESSAGE(files.ok(), (files.ok() ? "" : files.error().message));
    for (const auto& f : *files) {
        if (!f.symlink_target.empty()) continue;
        CAPTURE(f.name);
        const auto expected_path = dir / "expected" / f.name;
        if (std::getenv("OAR_UPDATE_GOLDEN")) {
            fs::create_directories(expected_path.parent_path());
            REQUIRE(common::write_file_atomically(expected_path, f.contents).ok());
        }
        CHECK(test_support::read_file(expected_path) == f.contents);
    }
}

}  // namespace

TEST_CASE("golden: models on a removable drive") {
    check_golden("removable-drive");
    const auto dir = golden_dir / "removable-drive/expected";
    const auto service = test_support::read_file(dir / "ollama.service");
    CHECK(service.find("RequiresMountsFor=/run/media/piotro/CACHE1/airllm\n") != std::string::npos);
    CHECK(service.find("ReadWritePaths=/var/lib/ollama /run/media/piotro/CACHE1/airllm\n") != std::string::npos);
    const auto env = test_support::read_file(dir / "ollama.env");
    CHECK(env.find("\nOLLAMA_MODELS=/run/media/piotro/CACHE1/airllm\n") != std::string::npos);
    CHECK(env.find("\nAIRLLM_COMPRESSION=4bit\n") != std::string::npos);
    CHECK(env.find("\nAIRLLM_VRAM_BUDGET=20GiB\n") != std::string::npos);
    CHECK(env.find("\nHIP_VISIBLE_DEVICES=0\n") != std::string::npos);
    CHECK(env.find("\nHSA_OVERRIDE_GFX_VERSION=") == std::string::npos);
    CHECK(env.find("PYTHONPATH") == std::string::npos);
    const auto install = test_support::read_file(dir / "ollama-airllm-rocm.install");
    CHECK(install.find("udisks") != std::string::npos);
    const auto tmpfiles = test_support::read_file(dir / "tmpfiles.conf");
    CHECK(tmpfiles.find("d /run/media") == std::string::npos);  // never create a folder under a mount point
}

TEST_CASE("golden: an RDNA2 card that needs HSA_OVERRIDE_GFX_VERSION, a patch, llama.cpp by commit") {
    check_golden("rdna2-override");
    const auto dir = golden_dir / "rdna2-override/expected";
    const auto env = test_support::read_file(dir / "ollama.env");
    CHECK(env.find("\nHSA_OVERRIDE_GFX_VERSION=10.3.0\n") != std::string::npos);
    const auto pkgbuild = test_support::read_file(dir / "PKGBUILD");
    CHECK(pkgbuild.find("_gpu_targets='gfx1031;gfx1030'") != std::string::npos);
    CHECK(pkgbuild.find("pkgver=0.33.0rc2\n") != std::string::npos);
    CHECK(pkgbuild.find("#commit=0123456789abcdef0123456789abcdef01234567") != std::string::npos);
    CHECK(pkgbuild.find("_patches=('0001-fixture-greeting.patch')") != std::string::npos);
    CHECK(test_support::read_file(dir / "tmpfiles.conf").find("d /var/lib/ollama/models 0750 ollama ollama -") !=
          std::string::npos);
}

TEST_CASE("the committed recipe is what the templates give (generate --check in a test)") {
    const auto files =
        pkg::generate_recipe(options_for(source_dir / "ollama-airllm-rocm.yaml", source_dir / "patches", source_dir));
    REQUIRE_MESSAGE(files.ok(), (files.ok() ? "" : files.error().message));
    for (const auto& status : pkg::compare_with_disk(*files, source_dir)) {
        CAPTURE(status.name);
        INFO(status.diff);
        CHECK(status.up_to_date);
    }
}

TEST_CASE("PKGBUILD and .install are valid bash, and .SRCINFO equals makepkg --printsrcinfo") {
    for (const char* case_name : {"removable-drive", "rdna2-override"}) {
        CAPTURE(case_name);
        TempTree tree;
        const auto dir = golden_dir / case_name;
        const auto files =
            pkg::generate_recipe(options_for(dir / "ollama-airllm-rocm.yaml", dir / "patches", tree.root()));
        REQUIRE(files.ok());
        REQUIRE(pkg::write_generated(*files, tree.root()).ok());
        for (const char* script : {"PKGBUILD", "ollama-airllm-rocm.install"}) {
            const auto r = test_support::run_process({"/bin/bash", "-n", (tree.root() / script).string()});
            CHECK_MESSAGE(r.exit_code == 0, r.err);
        }
        const auto r = test_support::run_makepkg(tree.root(), {"--printsrcinfo"}, tree.root());
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        CHECK(r.out == file_named(*files, ".SRCINFO").contents);
    }
}

TEST_CASE("the .install functions print what to do next") {
    const auto dir = golden_dir / "removable-drive/expected";
    const auto run = [&](const std::string& call) {
        return test_support::run_process(
            {"/bin/sh", "-c", ". \"$0\" && " + call, (dir / "ollama-airllm-rocm.install").string()});
    };
    const auto installed = run("post_install 0.32.15-3");
    CHECK(installed.exit_code == 0);
    CHECK(installed.out.find("rocm-probe") != std::string::npos);
    CHECK(installed.out.find("systemctl enable --now ollama") != std::string::npos);
    CHECK(installed.out.find("sudo install -d -o ollama -g ollama -m 0750 '/run/media/piotro/CACHE1/airllm'") !=
          std::string::npos);
    const auto upgraded = run("post_upgrade 0.32.15-3 0.32.15-2");
    CHECK(upgraded.exit_code == 0);
    CHECK(upgraded.out.find("ROCm upgrade") != std::string::npos);
    const auto removed = run("post_remove 0.32.15-3");
    CHECK(removed.out.find("were kept") != std::string::npos);
    // Messages only: the scriptlet must not manage users or services itself (namcap's external-hooks).
    const auto text = test_support::read_file(dir / "ollama-airllm-rocm.install");
    for (const char* forbidden :
         {"useradd", "systemd-sysusers", "systemd-tmpfiles", "chown", "systemctl daemon", "systemctl disable"})
        CHECK(text.find(forbidden) == std::string::npos);
}

TEST_CASE("generation fails whole on a bad template or config, writing nothing") {
    TempTree tree;
    fs::copy(source_dir / "templates", tree.root() / "templates", fs::copy_options::recursive);
    fs::copy(source_dir / "ollama-airllm-rocm.yaml", tree.root() / "ollama-airllm-rocm.yaml");
    tree.write("templates/ollama.service", "[Service]\nUser=@{usr}\n");
    const auto out = tree.root() / "out";
    fs::create_directory(out);
    const auto bad_template = pkg::generate_recipe(
        {tree.root() / "ollama-airllm-rocm.yaml", tree.root() / "templates", tree.root() / "patches", out});
    REQUIRE_FALSE(bad_template.ok());
    CHECK(bad_template.error().message.find("templates/ollama.service:2:6: unknown variable 'usr'") !=
          std::string::npos);
    CHECK(fs::is_empty(out));

    tree.write("ollama-airllm-rocm.yaml", "pkgrel: 1\n");
    const auto bad_config = pkg::generate_recipe(
        {tree.root() / "ollama-airllm-rocm.yaml", source_dir / "templates", tree.root() / "patches", out});
    REQUIRE_FALSE(bad_config.ok());
    CHECK(bad_config.error().message.find("missing key 'upstream'") != std::string::npos);
}

TEST_CASE("a % in the models folder reaches systemd and tmpfiles as %%, and a non-loopback listen is warned of") {
    TempTree tree;
    auto config = test_support::read_file(source_dir / "ollama-airllm-rocm.yaml");
    const auto replace = [&](const std::string& from, const std::string& to) {
        const auto at = config.find(from);
        REQUIRE(at != std::string::npos);
        config.replace(at, from.size(), to);
    };
    replace("models_dir: /var/lib/ollama", "models_dir: /srv/ai%h-models");
    replace("listen: 127.0.0.1:11434", "listen: 0.0.0.0:11434");
    tree.write("ollama-airllm-rocm.yaml", config);
    const auto files =
        pkg::generate_recipe(options_for(tree.root() / "ollama-airllm-rocm.yaml", source_dir / "patches", tree.root()));
    REQUIRE_MESSAGE(files.ok(), (files.ok() ? "" : files.error().message));
    const auto service = file_named(*files, "ollama.service").contents;
    CHECK(service.find("ReadWritePaths=/var/lib/ollama /srv/ai%%h-models\n") != std::string::npos);
    CHECK(service.find("RequiresMountsFor=/srv/ai%%h-models\n") != std::string::npos);
    CHECK(file_named(*files, "ollama.env").contents.find("OLLAMA_MODELS=/srv/ai%h-models\n") != std::string::npos);
    CHECK(file_named(*files, "tmpfiles.conf").contents.find("/srv/ai%%h-models") != std::string::npos);

    fs::copy(source_dir / "templates", tree.root() / "templates", fs::copy_options::recursive);
    fs::create_directory(tree.root() / "patches");
    const auto warned = test_support::run_process(
        {OAR_OLLAMA_PKG, "generate", "--config", (tree.root() / "ollama-airllm-rocm.yaml").string()});
    CHECK(warned.exit_code == 0);
    CHECK(warned.err.find("warning: service.listen 0.0.0.0:11434 is not a loopback address") != std::string::npos);
    const auto quiet = test_support::run_process(
        {OAR_OLLAMA_PKG, "generate", "--check", "--config", (source_dir / "ollama-airllm-rocm.yaml").string()});
    CHECK(quiet.err.find("warning") == std::string::npos);
}

TEST_CASE("a template that drops a setting is caught") {
    TempTree tree;
    fs::copy(source_dir / "templates", tree.root() / "templates", fs::copy_options::recursive);
    auto env = test_support::read_file(tree.root() / "templates/ollama.env");
    env.replace(env.find("AIRLLM_FORCE=@{force}"), 21, "AIRLLM_FORCE=0");
    tree.write("templates/ollama.env", env);
    const auto files = pkg::generate_recipe(
        {source_dir / "ollama-airllm-rocm.yaml", tree.root() / "templates", tree.root() / "patches", tree.root()});
    REQUIRE_FALSE(files.ok());
    CHECK(files.error().message.find("no template uses the variable(s) force") != std::string::npos);
}

TEST_CASE("write_generated changes only what differs and makes patch symlinks") {
    TempTree tree;
    const auto dir = golden_dir / "rdna2-override";
    const auto files = pkg::generate_recipe(options_for(dir / "ollama-airllm-rocm.yaml", dir / "patches", tree.root()));
    REQUIRE(files.ok());
    const auto first = pkg::write_generated(*files, tree.root());
    REQUIRE(first.ok());
    CHECK(first->size() == files->size());
    CHECK(fs::read_symlink(tree.root() / "0001-fixture-greeting.patch") ==
          fs::relative(dir / "patches", tree.root()) / "0001-fixture-greeting.patch");
    const auto second = pkg::write_generated(*files, tree.root());
    REQUIRE(second.ok());
    CHECK(second->empty());
    tree.write("ollama.env", "edited\n");
    const auto third = pkg::write_generated(*files, tree.root());
    REQUIRE(third.ok());
    CHECK(*third == std::vector<std::string>{"ollama.env"});
    // No temporary files are left behind.
    for (const auto& entry : fs::directory_iterator(tree.root()))
        CHECK(entry.path().filename().string().find(".XXXXXX") == std::string::npos);
}

TEST_CASE("line_diff shows removed and added lines with context") {
    const auto d = pkg::line_diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nD\ne\nf\ng\nh\n", "old", "new");
    CHECK(d == "--- old\n+++ new\n b\n c\n-d\n+D\n e\n f\n g\n+h\n");
    CHECK(pkg::line_diff("x", "x\n", "o", "n").find("-x\\ no newline at end of file") != std::string::npos);
}

TEST_CASE("atomic writes leave the old file when the folder is unwritable") {
    TempTree tree;
    tree.write("keep", "old\n");
    const auto ok = common::write_file_atomically(tree.root() / "keep", "new\n");
    REQUIRE(ok.ok());
    CHECK(test_support::read_file(tree.root() / "keep") == "new\n");
    const auto missing_dir = common::write_file_atomically(tree.root() / "no/such/dir/file", "x");
    REQUIRE_FALSE(missing_dir.ok());
    CHECK(missing_dir.error().message.find("cannot create a temporary file") != std::string::npos);
}

TEST_CASE("the committed .SRCINFO is what makepkg --printsrcinfo says of the committed PKGBUILD") {
    TempTree tree;
    for (const char* name : {"PKGBUILD", "ollama-airllm-rocm.install"}) fs::copy(source_dir / name, tree.root() / name);
    const auto r = test_support::run_makepkg(tree.root(), {"--printsrcinfo"}, tree.root());
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out == test_support::read_file(source_dir / ".SRCINFO"));
    const auto syntax = test_support::run_process({"/bin/bash", "-n", (source_dir / "PKGBUILD").string()});
    CHECK(syntax.exit_code == 0);
}
