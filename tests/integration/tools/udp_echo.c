/* udp-echo PORT: answers every UDP datagram on 0.0.0.0:PORT with "echo:" and the datagram,
 * to its sender. The network tests run it inside the busybox image (Debian's busybox has no
 * UDP server applet: no dnsd, no tftpd, an nc without -u), so it is linked statically and
 * embedded in the test binary (embedded_tools.cpp). Prints "ready" once bound. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: udp-echo PORT\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("udp-echo: socket");
    return 1;
  }
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("udp-echo: bind");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    char in[2048], out[2048 + 5];
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr*)&from, &len);
    if (n < 0) continue;
    /* What came from where, for the test's failure messages (hutch logs). */
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (from.ss_family == AF_INET) {
      struct sockaddr_in* f = (struct sockaddr_in*)&from;
      inet_ntop(AF_INET, &f->sin_addr, host, sizeof host);
      port = ntohs(f->sin_port);
    }
    printf("got %zd bytes from %s:%u\n", n, host, port);
    fflush(stdout);
    memcpy(out, "echo:", 5);
    memcpy(out + 5, in, (size_t)n);
    if (sendto(fd, out, (size_t)n + 5, 0, (struct sockaddr*)&from, len) < 0) perror("udp-echo: sendto");
  }
}
