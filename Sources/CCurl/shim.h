#ifndef VITALGATE_CCURL_SHIM_H
#define VITALGATE_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic; Swift needs one typed entry point per kind. */
static inline CURLcode vg_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode vg_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode vg_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode vg_curl_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode vg_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
/* Write and header callbacks share curl_write_callback's shape; a function pointer is not a void *. */
static inline CURLcode vg_curl_setopt_write_callback(CURL *h, CURLoption o, curl_write_callback v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode vg_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
/* CURLVERSION_NOW is an enum alias Swift imports, but keep the call in one place. */
static inline const curl_version_info_data *vg_curl_version_info(void) { return curl_version_info(CURLVERSION_NOW); }
/* CURL_GLOBAL_DEFAULT is a macro built from other macros. */
static inline CURLcode vg_curl_global_init_default(void) { return curl_global_init(CURL_GLOBAL_DEFAULT); }
/* The write callback's "abort this transfer" answer differs from any byte count curl can pass. */
static inline size_t vg_curl_write_abort(void) { return 0; }
#endif
