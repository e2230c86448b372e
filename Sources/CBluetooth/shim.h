#ifndef VITALGATE_CBLUETOOTH_SHIM_H
#define VITALGATE_CBLUETOOTH_SHIM_H
#include <bluetooth/bluetooth.h>
#include <bluetooth/rfcomm.h>

/* BDADDR_ANY is the address of a compound literal; Swift cannot import it. */
static inline bdaddr_t vg_bdaddr_any(void) { bdaddr_t a = {{0, 0, 0, 0, 0, 0}}; return a; }
#endif
