// .github/workflows/rebuild.yml: valid YAML with the steps the rebuild needs, shell steps shellcheck-clean.
#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "support/run_process.h"
#include "support/temp_tree.h"

namespace fs = std::filesystem;

namespace {

const fs::path workflow = fs::path(OAR_SOURCE_DIR) / ".github/workflows/rebuild.yml";

}  // namespace

TEST_CASE("the rebuild workflow runs daily and on demand in Arch as an unprivileged builder") {
    const YAML::Node doc = YAML::LoadFile(workflow.string());
    // yaml-cpp reads the key `on` as a string; GitHub does too.
    CHECK(doc["on"]["schedule"][0]["cron"].as<std::string>() == "17 5 * * *");
    CHECK(doc["on"]["workflow_dispatch"].IsDefined());
    const auto job = doc["jobs"]["rebuild"];
    CHECK(job["container"].as<std::string>() == "archlinux:base-devel");
    CHECK(job["defaults"]["run"]["shell"].as<std::string>() == "bash");
    std::string all_runs;
    bool uploads = false;
    for (const auto& step : job["steps"]) {
        if (step["run"]) all_runs += step["run"].as<std::string>() + "\n";
        if (step["uses"] && step["uses"].as<std::string>().rfind("actions/upload-artifact@", 0) == 0) uploads = true;
    }
    CHECK(uploads);
    CHECK(all_runs.find("useradd --create-home builder") != std::string::npos);
    CHECK(all_runs.find("sudo -u builder build/src/pkg/ollama-pkg update") != std::string::npos);
    CHECK(all_runs.find("sudo -u builder build/src/pkg/ollama-pkg build") != std::string::npos);
    CHECK(all_runs.find("gh pr create") != std::string::npos);
    CHECK(all_runs.find("gh issue create") != std::string::npos);
}

TEST_CASE("every shell step of the rebuild workflow passes shellcheck") {
    const YAML::Node doc = YAML::LoadFile(workflow.string());
    test_support::TempTree tree;
    int checked = 0;
    for (const auto& step : doc["jobs"]["rebuild"]["steps"]) {
        if (!step["run"]) continue;
        const auto name = step["name"] ? step["name"].as<std::string>() : std::string("unnamed step");
        CAPTURE(name);
        // GitHub substitutes ${{ }} before bash runs: the steps keep them out of their scripts (env: instead).
        const auto script = step["run"].as<std::string>();
        CHECK(script.find("${{") == std::string::npos);
        const auto file = tree.root() / ("step" + std::to_string(checked++) + ".sh");
        tree.write(file.filename(), "#!/bin/bash\n" + script);
        const auto r =
            test_support::run_process({"/usr/bin/shellcheck", "--shell=bash", "--severity=style", file.string()});
        CHECK_MESSAGE(r.exit_code == 0, (r.out + r.err));
    }
    CHECK(checked >= 6);
}
