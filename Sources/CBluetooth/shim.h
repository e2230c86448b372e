#ifndef VITALGATE_CBLUETOOTH_SHIM_H
#define VITALGATE_CBLUETOOTH_SHIM_H
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <bluetooth/bluetooth.h>
#include <bluetooth/rfcomm.h>

/* BDADDR_ANY is the address of a compound literal; Swift cannot import it. */
static inline bdaddr_t vg_bdaddr_any(void) { bdaddr_t a = {{0, 0, 0, 0, 0, 0}}; return a; }

/* A non-blocking, close-on-exec RFCOMM stream socket; -1 with errno set on failure. */
static inline int vg_rfcomm_socket(void) {
    return socket(AF_BLUETOOTH, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, BTPROTO_RFCOMM);
}

/* Starts connecting `fd` to `address` (most significant byte first, as written `AA:BB:..`) on
 * `channel`. bdaddr_t keeps the bytes in the reverse order, as str2ba does. Returns connect(2)'s
 * result: 0, or -1 with errno (EINPROGRESS for a non-blocking socket that is still connecting). */
static inline int vg_rfcomm_connect(int fd, const unsigned char address[6], unsigned char channel) {
    struct sockaddr_rc remote;
    memset(&remote, 0, sizeof remote);
    remote.rc_family = AF_BLUETOOTH;
    for (int i = 0; i < 6; i++) remote.rc_bdaddr.b[i] = address[5 - i];
    remote.rc_channel = channel;
    return connect(fd, (struct sockaddr *)&remote, sizeof remote);
}

/* The pending error of a socket whose non-blocking connect finished (SO_ERROR): 0 when it
 * connected, an errno value when it failed, -1 with errno set when the option cannot be read. */
static inline int vg_socket_error(int fd) {
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return -1;
    return error;
}
#endif
