// The suite's own static helper programs (tools/), for containers of the busybox image.
#pragma once

#include <string>

namespace hit {

// Writes tools/udp_echo.c's program as DIR/udp-echo (mode 0755); returns its path.
std::string write_udp_echo(const std::string& dir);

}  // namespace hit
