// The static helper programs of tools/, built with the suite and embedded in its binary: the
// binary is copied away and run by other users, and needs nothing from the build tree.
#include "embedded_tools.hpp"

#include <sys/stat.h>

#include <stdexcept>

#include "harness.hpp"

// HUTCH_IT_UDP_ECHO: the path of the built helper (tests/integration/CMakeLists.txt).
asm(".section .rodata\n"
    ".balign 16\n"
    ".global hutch_it_udp_echo_start\n"
    "hutch_it_udp_echo_start:\n"
    ".incbin \"" HUTCH_IT_UDP_ECHO "\"\n"
    ".global hutch_it_udp_echo_end\n"
    "hutch_it_udp_echo_end:\n"
    ".previous\n");
extern "C" const char hutch_it_udp_echo_start[];
extern "C" const char hutch_it_udp_echo_end[];

namespace hit {

std::string write_udp_echo(const std::string& dir) {
  std::string path = dir + "/udp-echo";
  write_file(path, std::string(hutch_it_udp_echo_start, hutch_it_udp_echo_end));
  if (::chmod(path.c_str(), 0755) != 0) throw std::runtime_error("chmod " + path);
  return path;
}

}  // namespace hit
