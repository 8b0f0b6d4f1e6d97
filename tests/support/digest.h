// SHA-256 as lowercase hex (OpenSSL), for tests that name blobs by digest or check fixture files.
#pragma once

#include <string>

namespace test_support {

std::string sha256_hex(const std::string& data);

}  // namespace test_support
