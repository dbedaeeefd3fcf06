/*
 * The kernel's UAPI headers take struct sockaddr from the C library (<linux/if.h> includes
 * <sys/socket.h> for it). This userland has no C library, so this is that header, reduced to what
 * init.c needs, with the kernel's own definitions and values (include/linux/socket.h and
 * include/linux/net.h of Linux 6.1).
 */
#ifndef FTVM_SYS_SOCKET_H
#define FTVM_SYS_SOCKET_H

#include <linux/socket.h>

struct sockaddr {
  __kernel_sa_family_t sa_family;
  char sa_data[14];
};

#define AF_INET 2
#define SOCK_DGRAM 2
#define MSG_TRUNC 0x20

#endif
