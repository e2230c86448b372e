"""Checks testbed.py's helpers that device sessions rely on, and prints what happened as one JSON object.

Run with the system python3: `/usr/bin/python3 scripts/udev-harness/testbed_scenario.py` (test_testbed.py
does). A small program runs under the testbed, as VitalGate would: it sends a feature report and an output
report to the Omron's hidraw node and reads what the "device" answers, then reads from a CP2102's ttyUSB node;
the harness plays the device side on the nodes' pty masters.
"""
from __future__ import annotations

import json
import os
import select
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import testbed  # noqa: E402

LIMIT = 60  # seconds: a liveness bound

# The host side, as a separate process under the preload (so /dev/hidraw0 is the testbed's).
HOST = r'''
import fcntl, os, sys
hid, tty = sys.argv[1], sys.argv[2]
fd = os.open(hid, os.O_RDWR)
HIDIOCSFEATURE = lambda n: (3 << 30) | (n << 16) | (ord("H") << 8) | 0x06
print("feature", fcntl.ioctl(fd, HIDIOCSFEATURE(3), bytearray(b"\x00\x74\xbc")), flush=True)
os.write(fd, bytes([0x00, 0x0A, 0x0D, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00]))
print("report", os.read(fd, 64).hex(), flush=True)
port = os.open(tty, os.O_RDWR | os.O_NOCTTY)
import termios, tty as ttymod
ttymod.setraw(port)
print("serial", os.read(port, 64).hex(), flush=True)
'''


def read_master(bed: testbed.Testbed, fd: int, count: int) -> bytes:
    data = b""
    for _ in range(LIMIT * 50):
        if len(data) >= count:
            break
        bed.pump(0.02)
        ready, _, _ = select.select([fd], [], [], 0)
        if ready:
            data += os.read(fd, 64)
    return data


def scenario() -> dict:
    bed = testbed.Testbed.start("omron-hem-790it", "cp2102-a")
    try:
        reports = bed.accept_feature_reports("omron-hem-790it")
        hid_master = bed.master_fd("omron-hem-790it")
        run = bed.run(["/usr/bin/python3", "-c", HOST, bed.node("omron-hem-790it"), bed.node("cp2102-a")])
        run.wait_for(lambda lines: any(line.startswith("feature") for line in lines), LIMIT)
        written = read_master(bed, hid_master, 9)
        os.write(hid_master, bytes([0x0A, 0x0D, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00]))
        run.wait_for(lambda lines: any(line.startswith("report") for line in lines), LIMIT)
        os.write(bed.master_fd("cp2102-a"), b"\x02OK\x03")
        exit_code = run.wait(LIMIT)
        return {"featureReports": [report.hex() for report in reports], "hostWrote": written.hex(),
                "hostLines": run.lines, "hostExit": exit_code,
                "opens": {name: bed.opens(name) for name in ("omron-hem-790it", "cp2102-a")}}
    finally:
        bed.close()


def main() -> int:
    testbed.reexec_under_preload()
    try:
        result = scenario()
    except Exception as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
