// Upstream release tags as `git ls-remote --tags` lists them, and the choice of the newest release.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace pkg {

struct RemoteTag {
    std::string name;    // "v0.33.0"
    std::string commit;  // the commit it points at (peeled for annotated tags)
};

// Parses "SHA\trefs/tags/NAME" lines; "NAME^{}" lines give the commit of an annotated tag.
common::Result<std::vector<RemoteTag>> parse_ls_remote(std::string_view output);

// Ollama release tags: vMAJOR.MINOR.PATCH, and -rcN only when `include_rc`.
bool is_release_tag(const std::string& name, bool include_rc);

// The newest release by pacman's version order of the pkgver each tag gives; nullopt if none.
std::optional<RemoteTag> newest_release(const std::vector<RemoteTag>& tags, bool include_rc);

// `git ls-remote --tags URL` (or one ref pattern), through the real git.
common::Result<std::vector<RemoteTag>> list_remote_tags(const std::string& repository, const std::string& pattern = "");

}  // namespace pkg
