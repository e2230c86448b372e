#ifndef VITALGATE_CDBUS_SHIM_H
#define VITALGATE_CDBUS_SHIM_H
#include <dbus/dbus.h>

/* dbus_message_append_args is variadic; appending one basic value at a time goes through iterators instead. */
static inline dbus_bool_t vg_dbus_append_string(DBusMessageIter *it, const char *s) {
    return dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &s);
}
#endif
