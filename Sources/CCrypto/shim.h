#ifndef VITALGATE_CCRYPTO_SHIM_H
#define VITALGATE_CCRYPTO_SHIM_H
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/err.h>

/* OPENSSL_free is a macro that passes __FILE__/__LINE__. */
static inline void vg_openssl_free(void *p) { OPENSSL_free(p); }
#endif
