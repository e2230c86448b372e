"""Drives `vitalgate devices` under a umockdev testbed and prints what it saw as one JSON object.

Run with the system python3 (it needs gi/UMockdev): `/usr/bin/python3 scripts/udev-harness/devices_scenario.py`.
test_discovery.py runs it and asserts on the JSON. The scenario:

1. attach an Omron HEM-790IT (hidraw), two CP2102 bridges (ttyUSB, different serial numbers and ports) and
   an FTDI FT232R no profile claims;
2. `vitalgate devices --json` with the shipped profiles, and with a tree of the shipped profiles plus the
   harness's CP2102 profile (which names the bridge's strings, so it beats a claim by ids alone);
3. `vitalgate devices --watch` with that tree: wait for the four "present" lines, then unplug and re-plug
   the Omron and one CP2102 back to back, wait for the four events, end it with SIGTERM;
4. `vitalgate devices --watch 0.5`: ends by itself;
5. count the opens of every emulated node (none may be opened), then open one node from here to prove
   the count works.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import testbed  # noqa: E402

DEVICES = ["omron-hem-790it", "cp2102-a", "cp2102-b", "ft232r-unclaimed"]
LIMIT = 60  # seconds: a liveness bound, never a timing assertion


def events(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


def listing(bed: testbed.Testbed, binary: str, profiles: str) -> dict:
    done = subprocess.run([binary, "devices", "--json", "--profiles", profiles], env=bed.env(),
                          capture_output=True, text=True, timeout=LIMIT)
    return {"exit": done.returncode, "devices": json.loads(done.stdout) if done.returncode == 0 else None,
            "stderr": done.stderr}


def scenario(binary: str, shipped: Path) -> dict:
    result: dict = {}
    bed = testbed.Testbed.start(*DEVICES)
    with tempfile.TemporaryDirectory(prefix="vitalgate-profiles-") as tree:
        # The shipped profiles and the harness's CP2102 profile side by side, without copying any.
        for vendor in sorted(shipped.iterdir()):
            if vendor.is_dir() and vendor.name != "harness":
                os.symlink(vendor, Path(tree) / vendor.name)
        os.symlink(HERE / "profiles" / "harness", Path(tree) / "harness")
        try:
            result["nodes"] = {name: bed.node(name) for name in DEVICES}
            result["listingShipped"] = listing(bed, binary, str(shipped))
            result["listingHarness"] = listing(bed, binary, tree)

            watch = bed.run([binary, "devices", "--watch", "600", "--profiles", tree])
            watch.wait_for(lambda lines: len(lines) >= len(DEVICES), LIMIT)
            # Back to back: the command must report them in this order without being waited on.
            bed.remove("omron-hem-790it")
            bed.readd("omron-hem-790it")
            bed.remove("cp2102-a")
            bed.readd("cp2102-a")
            result["nodesAfterReplug"] = {name: bed.node(name) for name in DEVICES}
            watch.wait_for(lambda lines: len(lines) >= len(DEVICES) + 4, LIMIT)
            watch.signal(signal.SIGTERM)
            result["watchExit"] = watch.wait(LIMIT)
            result["watch"] = events(watch.lines)

            timed = bed.run([binary, "devices", "--watch", "0.5", "--profiles", tree])
            result["timedExit"] = timed.wait(LIMIT)
            result["timed"] = events(timed.lines)

            bed.open_watch.drain()
            result["opens"] = dict(bed.open_watch.counts)
            # The control: an open from here (preloaded, so /dev/ttyUSB2 is the testbed's) must be counted.
            before = bed.opens("ft232r-unclaimed")
            fd = os.open(bed.node("ft232r-unclaimed"), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            os.close(fd)
            result["controlOpens"] = bed.opens("ft232r-unclaimed") - before
        finally:
            bed.close()
    return result


def main() -> int:
    testbed.reexec_under_preload()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.environ.get("VITALGATE_BIN", str(ROOT / ".build/debug/vitalgate")))
    parser.add_argument("--shipped-profiles", default=str(ROOT / "DeviceProfiles"))
    arguments = parser.parse_args()
    try:
        result = scenario(arguments.binary, Path(arguments.shipped_profiles).resolve())
    except Exception as error:  # reported as JSON so the test shows what went wrong
        print(json.dumps({"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
