#!/usr/bin/env python3
"""The scenarios the Bluetooth test VM runs, in one boot, in the order the host asked for:

- smoke: proves the VM itself. bluetoothctl (the pairing agent too) discovers the two virtual peripherals,
  pairs with the blood-pressure monitor (Just Works, bonded), subscribes to its measurements and receives
  the stored records as indications, then connects to the heart-rate sensor and receives its 1 Hz
  notifications. Every value bluetoothctl printed is compared with what the peripherals sent.
- pipeline: vitalgated end to end (see pipeline.py).
- passkey: `vitalgate bluetooth pair --passkey-stdin` against a monitor that requires MITM (see passkey.py).

    scenario.py --request /vm/results/request.json --results /vm/results

Writes RESULTS/result.json (checks and timings per scenario, rewritten after each) and exits 0 only when
every check of every scenario passed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vmlib import BluetoothCtl, Peripherals, Report, bluetoothctl, device_info, end_process, log, wait_for  # noqa: E402

HERE = Path(__file__).resolve().parent
UUID_2A35 = "00002a35-0000-1000-8000-00805f9b34fb"
UUID_2A37 = "00002a37-0000-1000-8000-00805f9b34fb"
# The smoke scenario's devices (peripherals.py's configuration): three stored records, one with the
# irregular-pulse status bit, two users.
SMOKE_DEVICES = {
    "bp": {"name": "VG-BP", "address": "F1:0B:50:00:00:01", "clockOffsetSeconds": 0, "records": [
        {"systolic": 121, "diastolic": 79, "map": 93, "pulse": 64, "user": 1, "status": 0, "minutesAgo": 180},
        {"systolic": 135, "diastolic": 88, "map": 104, "pulse": 91, "user": 1, "status": 0x0004, "minutesAgo": 60},
        {"systolic": 118, "diastolic": 76, "map": 90, "pulse": 70, "user": 2, "status": 0x0001, "minutesAgo": 20},
    ]},
    "hr": {"name": "VG-HR", "address": "F2:0B:50:00:00:02", "heartRates": [72, 74, 77, 80, 83, 85, 84, 81, 78, 75]},
}
SMOKE_AFTER_RESTART = {"systolic": 109, "diastolic": 71, "map": 84, "pulse": 58, "user": 1, "status": 0, "minutesAgo": 1}


def restart_bluetoothd(debug: bool = False) -> None:
    env = {**os.environ, **({"VG_BLUETOOTHD_DEBUG": "1"} if debug else {})}
    subprocess.run([str(HERE / "vm-bluetoothd"), "restart"], env=env, check=True)


def adapter_powered() -> bool:
    return "Powered: yes" in bluetoothctl("show")


def attribute_paths(ctl: BluetoothCtl, address: str) -> dict[str, str]:
    """UUID -> D-Bus object path of every attribute bluetoothctl lists for a device."""
    mark = ctl.send(f"gatt.list-attributes {address}")
    time.sleep(1.0)  # the listing is printed at once; a short settle is enough, checked below
    lines = [line.strip() for line in ctl.snapshot(mark)]
    paths = {}
    for index, line in enumerate(lines[:-1]):
        if line.startswith("/org/bluez/") and len(lines[index + 1]) == 36:
            paths[lines[index + 1]] = line
    return paths


def smoke(results: Path, request: dict, report: Report) -> None:
    workdir = Path("/tmp/smoke")
    workdir.mkdir(parents=True, exist_ok=True)
    peripherals = Peripherals(workdir, SMOKE_DEVICES, verbose=request.get("verboseBumble", False),
                              name="smoke-peripherals", log_dir=results)
    bp, hr = peripherals.addresses["bp"], peripherals.addresses["hr"]
    ctl = None
    try:
        report.phase("peripherals started")
        wait_for("bluetoothd to power hci0", adapter_powered, 90)
        report.check("bluetoothd sees hci0 (Bumble's controller on /dev/vhci) and powers it", True)
        report.phase("adapter powered")

        ctl = BluetoothCtl(results / "bluetoothctl-smoke.log")
        ctl.wait_line(r"Agent registered|Controller", ctl.send("agent NoInputNoOutput"), 30)
        ctl.wait_line(r"Default agent request successful", ctl.send("default-agent"), 30)
        ctl.send("scan on")
        wait_for("both peripherals to be discovered",
                 lambda: bp in bluetoothctl("devices") and hr in bluetoothctl("devices"), 90, 1.0)
        report.check("discovered the blood-pressure monitor and the heart-rate sensor", True)
        ctl.send("scan off")
        report.phase("discovery")

        ctl.send(f"pair {bp}")
        wait_for("pairing with the blood-pressure monitor", lambda: device_info(bp).get("Paired") == "yes", 120, 1.0)
        info = device_info(bp)
        report.check("paired with the blood-pressure monitor (Just Works)", info.get("Paired") == "yes", info)
        report.check("the pairing is bonded", info.get("Bonded") == "yes", info)
        status = peripherals.status("bp")
        report.check("the monitor saw exactly one pairing and no failure",
                     status["pairings"] == 1 and status["pairingFailures"] == 0,
                     {k: status[k] for k in ("pairings", "pairingFailures", "encryptions")})
        report.phase("pairing")

        if device_info(bp).get("Connected") != "yes":
            ctl.send(f"connect {bp}")
        # `bluetoothctl info` does not show ServicesResolved: the listed attributes tell instead.
        paths = wait_for("the monitor's attributes", lambda: (p := attribute_paths(ctl, bp)).get(UUID_2A35) and p, 90)
        measurement = paths[UUID_2A35]
        mark = ctl.send(f"gatt.select-attribute {measurement}")
        time.sleep(0.5)
        mark = ctl.send("gatt.notify on")
        expected = len(peripherals.status("bp")["stored"]) + len(peripherals.status("bp")["delivered"])
        values = wait_for(f"{expected} stored records as indications",
                          lambda: (v := ctl.values(measurement, mark)) and len(v) >= expected and v, 90, 1.0)
        delivered = peripherals.status("bp")["delivered"]
        report.check("bluetoothctl received every stored record, in order, byte for byte",
                     [v.hex() for v in values[:expected]] == [d["bytes"] for d in delivered],
                     {"received": [v.hex() for v in values], "sent": [d["bytes"] for d in delivered]})
        report.check("the monitor has no record left unconfirmed", not peripherals.status("bp")["stored"])
        report.phase("indications")

        # bluetoothd forgets unconnected devices 30 s after discovery ends (TemporaryTimeout): look again.
        ctl.send("scan on")
        wait_for("the heart-rate sensor's advertising", lambda: hr in bluetoothctl("devices"), 90, 1.0)
        ctl.send("scan off")
        ctl.send(f"connect {hr}")
        wait_for("the heart-rate sensor to connect", lambda: device_info(hr).get("Connected") == "yes", 90, 1.0)
        paths = wait_for("the sensor's attributes", lambda: (p := attribute_paths(ctl, hr)).get(UUID_2A37) and p, 90)
        rate = paths[UUID_2A37]
        ctl.send(f"gatt.select-attribute {rate}")
        time.sleep(0.5)
        mark = ctl.send("gatt.notify on")
        values = wait_for("five heart-rate notifications", lambda: (v := ctl.values(rate, mark)) and len(v) >= 5 and v, 60, 1.0)
        sent = {entry["bytes"] for entry in peripherals.status("hr")["sent"]}
        report.check("bluetoothctl received heart-rate notifications the sensor sent (flags 0x10, RR interval)",
                     all(v.hex() in sent for v in values) and all(v[0] == 0x10 and len(v) == 4 for v in values),
                     {"received": [v.hex() for v in values][:10]})
        report.phase("notifications")
        hr_status = peripherals.status("hr")
        report.check("the heart-rate sensor was never asked to pair", hr_status["pairings"] == 0, hr_status["pairings"])

        # The bond outlives bluetoothd: after a restart the monitor's link is encrypted with the stored key
        # (its CCCD needs encryption) and a new record arrives without a second pairing.
        ctl.close()
        ctl = None
        # bluetoothd ends the subscription of a client that left the bus a moment later: a record added before then
        # is indicated (and confirmed by bluetoothd) at once, and nothing would be left to send after the restart.
        wait_for("bluetoothctl's subscription to end", lambda: peripherals.status("bp")["indicating"] == 0, 30, 0.2)
        before = peripherals.status("bp")
        peripherals.request("add-records", device="bp", records=[SMOKE_AFTER_RESTART])
        restart_bluetoothd(debug=request.get("bluetoothdDebug", False))
        wait_for("bluetoothd to power hci0 again", adapter_powered, 90)
        report.check("after a bluetoothd restart BlueZ still holds the bond",
                     device_info(bp).get("Bonded") == "yes", device_info(bp))
        ctl = BluetoothCtl(results / "bluetoothctl-smoke.log")
        ctl.send(f"connect {bp}")
        paths = wait_for("the monitor's attributes after the restart",
                         lambda: (p := attribute_paths(ctl, bp)).get(UUID_2A35) and p, 90)
        measurement = paths[UUID_2A35]
        ctl.send(f"gatt.select-attribute {measurement}")
        time.sleep(0.5)
        mark = ctl.send("gatt.notify on")
        values = wait_for("the record stored before the restart", lambda: ctl.values(measurement, mark), 90, 1.0)
        after = peripherals.status("bp")
        report.check("the new record arrived over the re-encrypted link",
                     values[0].hex() == after["delivered"][-1]["bytes"], {"received": [v.hex() for v in values]})
        report.check("re-encrypted with the stored key: no second pairing",
                     after["pairings"] == before["pairings"] == 1 and after["encryptions"] > before["encryptions"],
                     {k: (before[k], after[k]) for k in ("pairings", "pairingFailures", "encryptions")})
        report.phase("bond after bluetoothd restart")
    finally:
        # Leave bluetoothd as the next scenario expects it: no bonds, no connections.
        if ctl:
            ctl.send("gatt.notify off")
            for address in (bp, hr):
                ctl.send(f"disconnect {address}")
                ctl.send(f"remove {address}")
            time.sleep(2)
            ctl.close()
        peripherals.stop()
    report.phase("cleanup")


def write_results(results: Path, entries: list[dict], started: float) -> None:
    document = {"scenarios": entries, "timings": {"scenarios": round(time.monotonic() - started, 1),
                                                  "uptimeAtEnd": float(Path("/proc/uptime").read_text().split()[0])}}
    temporary = results / "result.json.tmp"
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, results / "result.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--request", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path)
    args = parser.parse_args()
    request = json.loads(args.request.read_text())
    started = time.monotonic()
    if request.get("bluetoothdDebug"):
        restart_bluetoothd(debug=True)
    monitor = None
    if request.get("dbusMonitor"):
        # Every signal and call on the system bus (BlueZ's PropertiesChanged, the agents), for diagnosis.
        monitor = subprocess.Popen(["dbus-monitor", "--system"], stdout=open(args.results / "dbus-monitor.log", "w"),
                                   stderr=subprocess.STDOUT)
    entries: list[dict] = []
    for name in request.get("scenarios", ["smoke"]):
        log(f"== scenario {name}")
        if name == "pipeline":
            import pipeline  # noqa: PLC0415  (needs the daemon binaries; smoke does not)
            report = Report(args.results, name, expects_observations=True)
            runner = pipeline.run
        elif name == "passkey":
            import passkey  # noqa: PLC0415  (needs the CLI and daemon binaries, like pipeline)
            report = Report(args.results, name)
            runner = passkey.run
        else:
            report = Report(args.results, name)
            runner = smoke
        error = None
        try:
            runner(args.results, request, report)
        except Exception as exception:  # every failure is reported, and the next scenario still runs
            error = f"{type(exception).__name__}: {exception}"
            traceback.print_exc()
        entries.append(report.finish(error))
        log(f"== scenario {name}: {'ok' if entries[-1]['ok'] else 'FAILED'} {error or ''}")
        write_results(args.results, entries, started)
    if monitor:
        end_process(monitor)
    return 0 if entries and all(entry["ok"] for entry in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
