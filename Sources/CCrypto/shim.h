#ifndef VITALGATE_CCRYPTO_SHIM_H
#define VITALGATE_CCRYPTO_SHIM_H
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/rand.h>
#include <openssl/ec.h>
#include <openssl/bn.h>

/* OPENSSL_free is a macro that passes __FILE__/__LINE__. */
static inline void vg_openssl_free(void *p) { OPENSSL_free(p); }

/* A passphrase callback that refuses: without it OpenSSL would prompt on the terminal for an encrypted
   key, which would hang a daemon. */
static inline int vg_pem_no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

/* Loads a private key (PKCS#8 or traditional PEM) from memory; encrypted keys fail instead of prompting. */
static inline EVP_PKEY *vg_pem_read_private_key(const void *pem, int length) {
    BIO *bio = BIO_new_mem_buf(pem, length);
    if (bio == NULL) return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, vg_pem_no_passphrase, NULL);
    BIO_free(bio);
    return key;
}

/* EVP_PKEY_EC and EVP_PKEY_RSA are macros over NIDs. */
static inline int vg_evp_pkey_is_ec(const EVP_PKEY *key) { return EVP_PKEY_get_base_id(key) == EVP_PKEY_EC; }
static inline int vg_evp_pkey_is_rsa(const EVP_PKEY *key) { return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA; }

/* Converts a DER ECDSA-Sig-Value to JWS's fixed-width R||S (RFC 7518 section 3.4): each integer
   left-padded to `width` bytes. Returns 1 on success, 0 if the DER is malformed or an integer is too wide. */
static inline int vg_ecdsa_der_to_raw(const unsigned char *der, long derLength, unsigned char *out, int width) {
    const unsigned char *cursor = der;
    ECDSA_SIG *signature = d2i_ECDSA_SIG(NULL, &cursor, derLength);
    if (signature == NULL) return 0;
    int ok = cursor == der + derLength
        && BN_bn2binpad(ECDSA_SIG_get0_r(signature), out, width) == width
        && BN_bn2binpad(ECDSA_SIG_get0_s(signature), out + width, width) == width;
    ECDSA_SIG_free(signature);
    return ok;
}

/* The most recent queued OpenSSL error as text ("" when none), and clears the queue so errors never leak
   into a later, unrelated failure. */
static inline void vg_openssl_last_error(char *buffer, size_t length) {
    unsigned long code = ERR_peek_last_error();
    if (code == 0) { if (length > 0) buffer[0] = 0; }
    else { ERR_error_string_n(code, buffer, length); }
    ERR_clear_error();
}
#endif
