#include "pkg/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

namespace pkg {

namespace {

// Collects located problems; the parse fails if any was added.
class Problems {
  public:
    explicit Problems(std::string file) : file_(std::move(file)) {}

    void add(const YAML::Mark& mark, const std::string& message) {
        std::ostringstream s;
        s << file_;
        if (!mark.is_null()) s << ':' << mark.line + 1 << ':' << mark.column + 1;
        s << ": " << message;
        lines_.push_back(s.str());
    }
    bool empty() const { return lines_.empty(); }
    std::string joined() const {
        std::string out;
        for (const auto& l : lines_) out += (out.empty() ? "" : "\n") + l;
        return out;
    }

  private:
    std::string file_;
    std::vector<std::string> lines_;
};

std::string join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
    return out;
}

// A map whose keys are checked against `allowed`; each known key is handed to its reader.
using KeyReader = std::function<void(const YAML::Node& value)>;
struct Key {
    std::string name;
    KeyReader read;
    bool required = false;
};

void read_map(const YAML::Node& node, const std::string& where, const std::vector<Key>& keys, Problems& problems) {
    if (!node.IsMap()) {
        problems.add(node.Mark(), "'" + where + "' must be a mapping of keys to values");
        return;
    }
    std::vector<std::string> names;
    for (const auto& k : keys) names.push_back(k.name);
    std::vector<std::string> seen;
    for (const auto& entry : node) {
        const auto name = entry.first.Scalar();
        const auto it = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
        if (it == keys.end()) {
            problems.add(entry.first.Mark(),
                         "unknown key '" + name + "' in " + where + " (known keys: " + join(names) + ")");
            continue;
        }
        seen.push_back(name);
        it->read(entry.second);
    }
    for (const auto& k : keys)
        if (k.required && std::find(seen.begin(), seen.end(), k.name) == seen.end())
            problems.add(node.Mark(), "missing key '" + k.name + "' in " + where);
}

KeyReader string_value(std::string& out, const std::string& what, Problems& problems,
                       std::function<std::string(const std::string&)> check = nullptr) {
    return [&out, what, &problems, check](const YAML::Node& v) {
        if (!v.IsScalar()) {
            problems.add(v.Mark(), what + " must be a string");
            return;
        }
        const auto text = v.Scalar();
        if (text.find_first_of("\n\r'\"`$\\") != std::string::npos) {
            problems.add(v.Mark(), what + " '" + text +
                                       "' contains a quote, backslash, '$' or newline, which the recipe cannot carry");
            return;
        }
        if (check) {
            if (const auto why = check(text); !why.empty()) {
                problems.add(v.Mark(), what + " '" + text + "' " + why);
                return;
            }
        }
        out = text;
    };
}

std::string check_regex(const std::string& text, const std::regex& re, const std::string& expected) {
    return std::regex_match(text, re) ? std::string() : "is not " + expected;
}

const std::regex url_re(R"((https|file)://[A-Za-z0-9._~:/?#@!&+,;=%-]+)");
const std::regex tag_re(R"(v\d+\.\d+\.\d+(-rc\d+)?)");
const std::regex llama_tag_re(R"(b\d+)");
const std::regex commit_re(R"([0-9a-f]{40})");
const std::regex module_sum_re(R"(h1:[A-Za-z0-9+/]{43}=)");
const std::regex gfx_re(R"(gfx[0-9]{1,2}[0-9a-f]{2}(:(xnack|sramecc)[+-])*)");
const std::regex env_key_re(R"([A-Z_][A-Z0-9_]*)");
const std::regex size_re(R"(auto|\d+(\.\d+)?(MiB|GiB|MB|GB))");
const std::regex device_re(R"(cpu|(hip|cuda):\d+)");
const std::regex visible_re(R"((\d+|GPU-[0-9a-f]{16})(,(\d+|GPU-[0-9a-f]{16}))*)");

std::string check_listen(const std::string& text) {
    static const std::regex re(R"(([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5}))");
    std::smatch m;
    if (!std::regex_match(text, m, re)) return "is not HOST:PORT (e.g. 127.0.0.1:11434)";
    const int port = std::stoi(m[2].str());
    if (port < 1 || port > 65535) return "has a port outside 1-65535";
    return {};
}

std::string check_models_dir(const std::string& text) {
    if (text.empty() || text.front() != '/') return "must be an absolute path";
    if (text.find_first_of(" \t") != std::string::npos)
        return "contains whitespace, which systemd's ReadWritePaths= would split";
    if (std::any_of(text.begin(), text.end(), [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; }))
        return "contains a control character";
    // The service may write there (ReadWritePaths=): a system folder would undo ProtectSystem=strict.
    std::string folder = text;
    while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
    for (const char* system : {"/", "/var", "/var/lib", "/var/tmp", "/home", "/tmp", "/root", "/run", "/run/media",
                               "/srv", "/opt", "/mnt", "/media"})
        if (folder == system) return "is a system folder, not a place for models (use a folder inside it)";
    if (text.find("/..") != std::string::npos || text.find("/./") != std::string::npos)
        return "must not contain . or .. components";
    for (const char* forbidden : {"/usr", "/etc", "/boot", "/proc", "/sys", "/dev", "/bin", "/sbin", "/lib", "/lib64"})
        if (text == forbidden || text.rfind(std::string(forbidden) + "/", 0) == 0)
            return "is a system folder, not a place for models";
    return {};
}

// Keys the generator writes itself: setting them in `environment` would silently fight the recipe.
const std::vector<std::string> managed_env = {"OLLAMA_HOST",        "OLLAMA_MODELS",       "AIRLLM_COMPRESSION",
                                              "AIRLLM_DEVICE",      "AIRLLM_FORCE",        "AIRLLM_GGUF",
                                              "AIRLLM_VRAM_BUDGET", "HIP_VISIBLE_DEVICES", "HSA_OVERRIDE_GFX_VERSION",
                                              "PYTHONPATH"};

void read_git_pin(const YAML::Node& node, const std::string& where, GitPin& pin, bool commit_required,
                  const std::regex& tag_pattern, const std::string& tag_form, Problems& problems,
                  std::vector<Key> extra_keys = {}) {
    std::vector<Key> keys = {
        {"repository",
         string_value(pin.repository, where + ".repository", problems,
                      [](const std::string& t) { return check_regex(t, url_re, "an https:// or file:// URL"); }),
         true},
        {"tag",
         string_value(pin.tag, where + ".tag", problems,
                      [&](const std::string& t) { return check_regex(t, tag_pattern, tag_form); }),
         true},
        {"commit",
         string_value(pin.commit, where + ".commit", problems,
                      [](const std::string& t) { return check_regex(t, commit_re, "40 lowercase hex digits"); }),
         commit_required}};
    keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
    read_map(node, where, keys, problems);
}

}  // namespace

bool is_loopback_listen(const std::string& listen) {
    const auto host = listen.substr(0, listen.rfind(':'));
    return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

std::string pkgver_from_tag(const std::string& tag) {
    std::string v = tag.rfind('v', 0) == 0 ? tag.substr(1) : tag;
    // pkgver may not contain '-': "0.33.0-rc2" sorts before "0.33.0" as "0.33.0rc2" in vercmp.
    v.erase(std::remove(v.begin(), v.end(), '-'), v.end());
    return v;
}

common::Result<Config> parse_config(const std::string& text, const std::string& file) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        return common::make_error(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                                  std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
    }
    if (!root.IsDefined() || root.IsNull()) return common::make_error(file + ": empty configuration");

    Config c;
    Problems problems(file);
    const auto read_pkgrel = [&](const YAML::Node& v) {
        try {
            c.pkgrel = v.as<int>();
        } catch (const YAML::Exception&) {
            problems.add(v.Mark(), "pkgrel must be a positive integer, found '" +
                                       (v.IsScalar() ? v.Scalar() : std::string("?")) + "'");
            return;
        }
        if (c.pkgrel < 1)
            problems.add(v.Mark(), "pkgrel must be a positive integer, found " + std::to_string(c.pkgrel));
    };
    const auto read_targets = [&](const YAML::Node& v) {
        if (v.IsScalar() && v.Scalar() == "auto") return;
        if (!v.IsSequence() || v.size() == 0) {
            problems.add(v.Mark(), "gpu_targets must be 'auto' or a non-empty list such as [gfx1100]");
            return;
        }
        for (const auto& t : v) {
            if (!t.IsScalar() || !std::regex_match(t.Scalar(), gfx_re)) {
                problems.add(t.Mark(), "gpu_targets entry '" + (t.IsScalar() ? t.Scalar() : std::string("?")) +
                                           "' is not a gfx target (e.g. gfx1100, gfx90a:xnack-)");
                continue;
            }
            if (std::find(c.gpu_targets.begin(), c.gpu_targets.end(), t.Scalar()) != c.gpu_targets.end())
                problems.add(t.Mark(), "gpu_targets lists '" + t.Scalar() + "' twice");
            else
                c.gpu_targets.push_back(t.Scalar());
        }
    };
    const auto read_environment = [&](const YAML::Node& v) {
        if (!v.IsMap()) {
            problems.add(v.Mark(), "service.environment must be a mapping of VARIABLE: value");
            return;
        }
        for (const auto& entry : v) {
            const auto key = entry.first.Scalar();
            if (!std::regex_match(key, env_key_re)) {
                problems.add(entry.first.Mark(),
                             "service.environment key '" + key + "' is not an environment variable name");
                continue;
            }
            if (std::find(managed_env.begin(), managed_env.end(), key) != managed_env.end()) {
                problems.add(entry.first.Mark(), "service.environment cannot set " + key +
                                                     ": the recipe writes it from its own setting" +
                                                     (key == "PYTHONPATH" ? " (nothing here is Python)" : ""));
                continue;
            }
            std::string value;
            string_value(value, "service.environment." + key, problems)(entry.second);
            c.service.environment.emplace_back(key, value);
        }
    };
    const auto read_force = [&](const YAML::Node& v) {
        try {
            c.runner.force = v.as<bool>();
        } catch (const YAML::Exception&) {
            problems.add(v.Mark(), "runner.force must be true or false");
        }
    };

    read_map(
        root, "the configuration",
        {{"maintainer", string_value(c.maintainer, "maintainer", problems)},
         {"pkgrel", read_pkgrel},
         {"upstream",
          [&](const YAML::Node& v) {
              read_git_pin(v, "upstream", c.upstream, true, tag_re, "an Ollama release tag such as v0.32.15", problems,
                           {{"module_sum", string_value(c.upstream_module_sum, "upstream.module_sum", problems,
                                                        [](const std::string& t) {
                                                            return check_regex(t, module_sum_re,
                                                                               "a Go module sum (h1: and 44 base64 "
                                                                               "characters)");
                                                        })}});
          },
          true},
         {"llama_cpp",
          [&](const YAML::Node& v) {
              read_git_pin(v, "llama_cpp", c.llama_cpp, false, llama_tag_re, "a llama.cpp build tag such as b10488",
                           problems);
          },
          true},
         {"gpu_targets", read_targets},
         {"service",
          [&](const YAML::Node& v) {
              read_map(
                  v, "service",
                  {{"listen", string_value(c.service.listen, "service.listen", problems, check_listen)},
                   {"models_dir", string_value(c.service.models_dir, "service.models_dir", problems, check_models_dir)},
                   {"hip_visible_devices",
                    string_value(c.service.hip_visible_devices, "service.hip_visible_devices", problems,
                                 [](const std::string& t) {
                                     return t.empty()
                                                ? std::string()
                                                : check_regex(t, visible_re, "a list like 0 or 0,1 or GPU-<16 hex>");
                                 })},
                   {"environment", read_environment}},
                  problems);
          }},
         {"runner",
          [&](const YAML::Node& v) {
              read_map(v, "runner",
                       {{"compression", string_value(c.runner.compression, "runner.compression", problems,
                                                     [](const std::string& t) {
                                                         return (t == "none" || t == "8bit" || t == "4bit")
                                                                    ? std::string()
                                                                    : "is not one of none, 8bit, 4bit";
                                                     })},
                        {"vram_budget", string_value(c.runner.vram_budget, "runner.vram_budget", problems,
                                                     [](const std::string& t) {
                                                         return check_regex(t, size_re,
                                                                            "'auto' or a size such as 20GiB");
                                                     })},
                        {"device", string_value(c.runner.device, "runner.device", problems,
                                                [](const std::string& t) {
                                                    return check_regex(t, device_re, "cpu, hip:N or cuda:N");
                                                })},
                        {"force", read_force},
                        {"gguf", string_value(c.runner.gguf, "runner.gguf", problems,
                                              [](const std::string& t) -> std::string {
                                                  return t == "off" || t == "auto" ? "" : "is not off or auto";
                                              })}},
                       problems);
          }}},
        problems);

    if (!problems.empty()) return common::make_error(problems.joined());
    return c;
}

common::Result<Config> load_config(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return common::make_error(path.string() + ": cannot read the configuration (does it exist?)");
    std::ostringstream text;
    text << in.rdbuf();
    return parse_config(text.str(), path.string());
}

}  // namespace pkg
