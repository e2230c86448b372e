"""`vitalgate devices` against emulated USB devices (umockdev): what it lists, the profile each device gets,
the hotplug events in order, and that it never opens a device node.

The project's venv has no `gi`, so the scenario runs in the system python3 (devices_scenario.py) and prints
JSON that these tests check. Needs the built binary (.build/debug/vitalgate, or $VITALGATE_BIN).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
BINARY = os.environ.get("VITALGATE_BIN", str(ROOT / ".build/debug/vitalgate"))
CP2102 = "10C4:EA60"
FTDI = "0403:6001"


def run_scenario() -> dict:
    assert Path(BINARY).exists(), f"{BINARY} is missing. Fix: run `swift build` first (or set VITALGATE_BIN)"
    assert Path(SYSTEM_PYTHON).exists(), "/usr/bin/python3 is missing. Fix: run scripts/install-deps"
    done = subprocess.run([SYSTEM_PYTHON, str(HERE / "devices_scenario.py"), "--binary", BINARY],
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.strip(), f"the scenario printed nothing (exit {done.returncode}); stderr:\n{done.stderr}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result.get("traceback", result)
    assert done.returncode == 0, done.stderr
    return result


@pytest.fixture(scope="module")
def scenario() -> dict:
    return run_scenario()


def by_node(devices: list[dict]) -> dict:
    return {device["node"]: device for device in devices}


def shipped_claims(vendor_product: str) -> set[str]:
    """Ids of shipped profiles whose match.usb names these ids (read from the files, not assumed)."""
    vendor, product = vendor_product.split(":")
    claims = set()
    for file in (ROOT / "DeviceProfiles").glob("*/*.json"):
        profile = json.loads(file.read_text())
        for entry in profile.get("match", {}).get("usb", []):
            if entry["vendorId"].upper() == vendor and entry["productId"].upper() == product:
                claims.add(profile["id"])
    return claims


def test_shipped_profiles_claim_the_omron_and_say_why_not_for_the_bridges(scenario):
    listing = scenario["listingShipped"]
    assert listing["exit"] == 0, listing["stderr"]
    devices = by_node(listing["devices"])
    nodes = scenario["nodes"]
    assert set(devices) == set(nodes.values())

    omron = devices[nodes["omron-hem-790it"]]
    assert (omron["subsystem"], omron["vendorId"], omron["productId"], omron["interface"]) == ("hidraw", "0590", "0028", 0)
    assert omron["match"] == "profile" and omron["profile"] == "omron/hem-790it"
    # No serial number and no ID_PATH on a hidraw node: keyed by the USB port name.
    assert omron["serialNumber"] is None and omron["portPath"] == "1-2" and omron["stableKey"] == "usb-port:1-2"

    claims = shipped_claims(CP2102)
    for name in ("cp2102-a", "cp2102-b"):
        bridge = devices[nodes[name]]
        assert bridge["subsystem"] == "tty" and f"{bridge['vendorId']}:{bridge['productId']}" == CP2102
        if claims:
            assert bridge["profile"] in claims
        else:
            assert bridge["match"] == "none" and bridge["profile"] is None
            assert bridge["reason"].startswith(f"no profile claims {CP2102}")


def test_harness_profile_claims_both_bridges_by_their_strings_and_keys_them_by_serial(scenario):
    # The tree is the shipped profiles plus harness/cp2102-bridge: a shipped profile that claims 10C4:EA60 by
    # its ids alone (if any) must lose to the one that also names interface, manufacturer and product.
    listing = scenario["listingHarness"]
    assert listing["exit"] == 0, listing["stderr"]
    devices = by_node(listing["devices"])
    nodes = scenario["nodes"]
    a, b = devices[nodes["cp2102-a"]], devices[nodes["cp2102-b"]]
    for bridge in (a, b):
        assert bridge["profile"] == "harness/cp2102-bridge"
        assert (bridge["manufacturer"], bridge["product"], bridge["interface"]) == \
            ("Silicon Labs", "CP2102 USB to UART Bridge Controller", 0)
    assert a["stableKey"] == f"usb-serial:{CP2102}:{a['serialNumber']}"
    assert b["stableKey"] == f"usb-serial:{CP2102}:{b['serialNumber']}"
    assert a["stableKey"] != b["stableKey"] and a["portPath"] != b["portPath"]
    assert devices[nodes["omron-hem-790it"]]["profile"] == "omron/hem-790it"

    assert not shipped_claims(FTDI), (f"the harness needs a device no profile claims, but {FTDI} is now claimed by "
                                      f"{shipped_claims(FTDI)}. Fix: give devices/ft232r-unclaimed.umockdev other ids")
    ftdi = devices[nodes["ft232r-unclaimed"]]
    assert ftdi["match"] == "none" and ftdi["profile"] is None
    assert ftdi["reason"] == f"no profile claims {FTDI}"


def test_watch_lists_what_is_present_then_reports_unplug_and_replug_in_order(scenario):
    lines = scenario["watch"]
    assert scenario["watchExit"] == 0
    nodes, after = scenario["nodes"], scenario["nodesAfterReplug"]
    present = [line for line in lines if line["event"] == "present"]
    assert lines[:len(present)] == present
    assert {line["node"]: line["profile"] for line in present} == {
        nodes["omron-hem-790it"]: "omron/hem-790it",
        nodes["cp2102-a"]: "harness/cp2102-bridge",
        nodes["cp2102-b"]: "harness/cp2102-bridge",
        nodes["ft232r-unclaimed"]: None,
    }
    hotplug = lines[len(present):-1]
    assert [(line["event"], line["node"]) for line in hotplug] == [
        ("removed", nodes["omron-hem-790it"]),
        ("added", after["omron-hem-790it"]),
        ("removed", nodes["cp2102-a"]),
        ("added", after["cp2102-a"]),
    ]
    # A re-plugged device keeps its key and its profile, whatever node number it gets.
    first = {line["node"]: line for line in present}
    for removed, added in (hotplug[0:2], hotplug[2:4]):
        assert added["node"] != removed["node"]
        assert removed == {**first[removed["node"]], "event": "removed"}
        assert added["stableKey"] == removed["stableKey"] and added["profile"] == removed["profile"]
    assert lines[-1] == {"event": "end", "reason": "signal"}


def test_watch_ends_by_itself_when_the_time_is_up(scenario):
    lines = scenario["timed"]
    assert scenario["timedExit"] == 0
    after = scenario["nodesAfterReplug"]
    assert sorted(line["node"] for line in lines[:-1]) == sorted(after.values())
    assert all(line["event"] == "present" for line in lines[:-1])
    assert lines[-1] == {"event": "end", "reason": "time"}


def test_no_device_node_is_ever_opened(scenario):
    # Every emulated node (the first ones and the re-plugged ones) stayed closed through all runs...
    assert len(scenario["opens"]) == 6
    assert all(count == 0 for count in scenario["opens"].values()), scenario["opens"]
    # ...and the counter does see an open when there is one.
    assert scenario["controlOpens"] == 1


@pytest.mark.parametrize("arguments, message", [
    (["--watch", "soon"], "--watch needs seconds"),
    (["--watch", "0"], "--watch needs seconds"),
    (["--color"], "unknown option --color"),
    (["extra"], "takes no operands"),
])
def test_usage_errors_exit_2(arguments, message):
    assert Path(BINARY).exists(), f"{BINARY} is missing. Fix: run `swift build` first (or set VITALGATE_BIN)"
    done = subprocess.run([BINARY, "devices", *arguments], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
