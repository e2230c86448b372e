#ifndef VITALGATE_CDBUS_SHIM_H
#define VITALGATE_CDBUS_SHIM_H
#include <dbus/dbus.h>
#include <stdint.h>

/* dbus_message_append_args is variadic; appending one basic value at a time goes through iterators instead.
   dbus_message_iter_append_basic takes a pointer to the value (for strings: to the char pointer), which these
   helpers take care of. */
static inline dbus_bool_t vg_dbus_append_string(DBusMessageIter *it, const char *s) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &s);
}
static inline dbus_bool_t vg_dbus_append_object_path(DBusMessageIter *it, const char *s) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_OBJECT_PATH, &s);
}
static inline dbus_bool_t vg_dbus_append_signature(DBusMessageIter *it, const char *s) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_SIGNATURE, &s);
}
static inline dbus_bool_t vg_dbus_append_byte(DBusMessageIter *it, uint8_t v) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_BYTE, &v);
}
static inline dbus_bool_t vg_dbus_append_bool(DBusMessageIter *it, int v) {
    dbus_bool_t b = v ? TRUE : FALSE;
    return dbus_message_iter_append_basic(it, DBUS_TYPE_BOOLEAN, &b);
}
static inline dbus_bool_t vg_dbus_append_int16(DBusMessageIter *it, int16_t v) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_INT16, &v);
}
static inline dbus_bool_t vg_dbus_append_uint16(DBusMessageIter *it, uint16_t v) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_UINT16, &v);
}
static inline dbus_bool_t vg_dbus_append_int32(DBusMessageIter *it, int32_t v) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_INT32, &v);
}
static inline dbus_bool_t vg_dbus_append_uint32(DBusMessageIter *it, uint32_t v) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_UINT32, &v);
}
static inline dbus_bool_t vg_dbus_append_int64(DBusMessageIter *it, int64_t v) {
    dbus_int64_t w = v;
    return dbus_message_iter_append_basic(it, DBUS_TYPE_INT64, &w);
}
static inline dbus_bool_t vg_dbus_append_uint64(DBusMessageIter *it, uint64_t v) {
    dbus_uint64_t w = v;
    return dbus_message_iter_append_basic(it, DBUS_TYPE_UINT64, &w);
}
static inline dbus_bool_t vg_dbus_append_double(DBusMessageIter *it, double v) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_DOUBLE, &v);
}

/* The type codes are macros with casts, which Swift does not import. */
static const int VG_DBUS_TYPE_INVALID = DBUS_TYPE_INVALID;
static const int VG_DBUS_TYPE_BYTE = DBUS_TYPE_BYTE;
static const int VG_DBUS_TYPE_BOOLEAN = DBUS_TYPE_BOOLEAN;
static const int VG_DBUS_TYPE_INT16 = DBUS_TYPE_INT16;
static const int VG_DBUS_TYPE_UINT16 = DBUS_TYPE_UINT16;
static const int VG_DBUS_TYPE_INT32 = DBUS_TYPE_INT32;
static const int VG_DBUS_TYPE_UINT32 = DBUS_TYPE_UINT32;
static const int VG_DBUS_TYPE_INT64 = DBUS_TYPE_INT64;
static const int VG_DBUS_TYPE_UINT64 = DBUS_TYPE_UINT64;
static const int VG_DBUS_TYPE_DOUBLE = DBUS_TYPE_DOUBLE;
static const int VG_DBUS_TYPE_STRING = DBUS_TYPE_STRING;
static const int VG_DBUS_TYPE_OBJECT_PATH = DBUS_TYPE_OBJECT_PATH;
static const int VG_DBUS_TYPE_SIGNATURE = DBUS_TYPE_SIGNATURE;
static const int VG_DBUS_TYPE_UNIX_FD = DBUS_TYPE_UNIX_FD;
static const int VG_DBUS_TYPE_ARRAY = DBUS_TYPE_ARRAY;
static const int VG_DBUS_TYPE_VARIANT = DBUS_TYPE_VARIANT;
static const int VG_DBUS_TYPE_STRUCT = DBUS_TYPE_STRUCT;
static const int VG_DBUS_TYPE_DICT_ENTRY = DBUS_TYPE_DICT_ENTRY;

static const int VG_DBUS_MESSAGE_TYPE_METHOD_CALL = DBUS_MESSAGE_TYPE_METHOD_CALL;
static const int VG_DBUS_MESSAGE_TYPE_METHOD_RETURN = DBUS_MESSAGE_TYPE_METHOD_RETURN;
static const int VG_DBUS_MESSAGE_TYPE_ERROR = DBUS_MESSAGE_TYPE_ERROR;
static const int VG_DBUS_MESSAGE_TYPE_SIGNAL = DBUS_MESSAGE_TYPE_SIGNAL;

static const int VG_DBUS_TIMEOUT_INFINITE = DBUS_TIMEOUT_INFINITE;
#endif
