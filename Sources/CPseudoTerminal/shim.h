// The POSIX pseudo-terminal functions of the C library. glibc declares them only under _XOPEN_SOURCE,
// which Swift's Glibc module is built without, so they are declared here (POSIX signatures) and wrapped.
#ifndef VITALGATE_CPSEUDOTERMINAL_SHIM_H
#define VITALGATE_CPSEUDOTERMINAL_SHIM_H

#include <stddef.h>

extern int posix_openpt(int flags);
extern int grantpt(int fd);
extern int unlockpt(int fd);
extern int ptsname_r(int fd, char *buf, size_t buflen);

static inline int vg_posix_openpt(int flags) { return posix_openpt(flags); }
static inline int vg_grantpt(int fd) { return grantpt(fd); }
static inline int vg_unlockpt(int fd) { return unlockpt(fd); }
static inline int vg_ptsname_r(int fd, char *buf, size_t buflen) { return ptsname_r(fd, buf, buflen); }

#endif
