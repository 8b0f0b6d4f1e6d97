// Stop strings over streamed text: holds back what could still become a stop string and cuts at the
// first one found, so no part of a stop string ever reaches the client.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace runner {

class StopMatcher {
  public:
    explicit StopMatcher(std::vector<std::string> stops);
    // Adds generated text; returns what may be sent now. `stopped()` turns true at a stop string.
    std::string push(const std::string& piece);
    // What was held back, once generation ends without a stop string.
    std::string flush();
    bool stopped() const { return stopped_; }

  private:
    std::vector<std::string> stops_;
    std::size_t hold_ = 0;
    std::string pending_;
    bool stopped_ = false;
};

}  // namespace runner
