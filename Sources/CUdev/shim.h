#ifndef VITALGATE_CUDEV_SHIM_H
#define VITALGATE_CUDEV_SHIM_H
#include <libudev.h>
#endif
