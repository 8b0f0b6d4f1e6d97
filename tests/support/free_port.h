// A loopback TCP port that nothing listens on right now, for tests that start servers.
#pragma once

namespace test_support {

int free_port();

}  // namespace test_support
