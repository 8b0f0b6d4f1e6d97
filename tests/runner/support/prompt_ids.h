// Token ids from a reference file as the CLI's --prompt-ids takes them: "1,2,3".
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace test_support {

inline std::string ids_csv(const nlohmann::json& ids) {
    std::string out;
    for (const auto& id : ids) out += (out.empty() ? "" : ",") + std::to_string(id.get<int>());
    return out;
}

}  // namespace test_support
