// BLAKE2b-512 as b2sum prints it (Arch's b2sums=()), through OpenSSL.
#pragma once

#include <string>
#include <string_view>

namespace pkg {

std::string b2sum_hex(std::string_view data);

}  // namespace pkg
