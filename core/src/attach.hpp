// The attach protocol between a container's monitor and the clients attached to it (`run`
// in the foreground, `start -a`, `attach`): SOCK_SEQPACKET messages, the first byte says what
// the rest is. One message is at most kMaxFrame bytes of payload.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hutch::attach {

inline constexpr std::size_t kMaxFrame = 32768;

// monitor -> client
inline constexpr char kStdout = 'o';
inline constexpr char kStderr = 'e';
inline constexpr char kExit = 'x';     // payload: the exit code in decimal
// client -> monitor
inline constexpr char kHello = 'h';    // payload: "1" when the client relays stdin, else "0"
inline constexpr char kStdin = 'i';
inline constexpr char kStdinEof = 'c';
inline constexpr char kResize = 'r';   // payload: "ROWS COLS"

// Sends one message (splitting data longer than kMaxFrame); false when the peer is gone.
bool send_frame(int fd, char type, std::string_view payload);
// One message, or nullopt at the end of the connection (or an error). Blocks unless the
// socket is non-blocking, in which case EAGAIN gives an empty type '\0'.
struct Frame {
  char type = 0;
  std::string payload;
};
std::optional<Frame> receive_frame(int fd);

// "ctrl-p,ctrl-q" -> {0x10, 0x11}; "" -> none. Errors (Errc::kUsage) name the flag.
std::vector<unsigned char> parse_detach_keys(const std::string& keys);

// The path of a container's attach socket: short, for sun_path's 108 bytes.
std::string socket_path(const std::string& run_root, const std::string& container_id);

struct RelayOptions {
  bool stdin_open = false;
  bool tty = false;
  std::vector<unsigned char> detach_keys;
  bool sig_proxy = true;
  std::function<void(int)> forward_signal;  // a signal for the container
};

// The client side: relays our stdio over `conn` until the container exits (its exit code)
// or the detach keys are typed (nullopt). With a tty and stdin_open, our terminal is raw
// while it lasts and our window size follows SIGWINCH. -1 when the monitor went away
// without an exit code.
std::optional<int> relay(int conn, const RelayOptions& options);

}  // namespace hutch::attach
