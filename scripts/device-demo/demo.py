#!/usr/bin/python3
"""VitalGate's main job with simulated hardware: two USB devices appear, vitalgated finds them through udev,
reads them, keeps every reading in its Outbox and uploads it to a local FHIR server.

    demo.py [--duration SECONDS] [--check] [--workdir DIR]

- The FHIR server is sekmet-fhir on 127.0.0.1 (scripts/fhir-server/serve), with the demo citizen's record.
- The devices are umockdev emulations (a Debian package; LD_PRELOAD redirects /sys, /dev and udev's
  netlink socket for vitalgated only): an Omron HEM-790IT blood-pressure monitor on /dev/hidraw0 and a
  Contec pulse oximeter behind a CP210x USB-serial bridge on /dev/ttyUSB0. Each node is a pseudo-terminal
  whose other end `vitalgate simulate` drives, replaying the real captures shipped beside the profiles.
- Part way through, the oximeter is unplugged (its simulator hangs up and udev reports the removal) and
  plugged in again, as a health worker moving between houses would.

It stops after --duration seconds (default 120) or on Ctrl-C, and then stops everything it started, by PID.
--check prints one JSON summary line for the end-to-end test instead of the narration.

Runs with the system python3: umockdev's Python bindings (gi) are a Debian package. Stdlib otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "daemon-harness"))
sys.path.insert(0, str(ROOT / "scripts" / "udev-harness"))

import harness  # noqa: E402  (stdlib only: the FHIR server, configuration, the daemon process)
import testbed  # noqa: E402  (umockdev through gi)

BP_CAPTURE = "DeviceProfiles/omron/hem-790it/790it-two-readings.capture"
OXIMETER_PROFILE = os.environ.get("VITALGATE_DEMO_OXIMETER", "contec/cms50d-plus")
LOINC_NAMES = {"85354-9": "blood pressure", "8867-4": "heart rate", "59408-5": "oxygen saturation",
               "2708-6": "oxygen saturation", "29463-7": "body weight", "8310-5": "body temperature"}


class Simulator:
    """`vitalgate simulate` playing a device on the master side of an emulated node's pseudo-terminal."""

    def __init__(self, workdir: Path, name: str, profile: str, capture: str, master_fd: int, forever: bool):
        self.log = open(workdir / f"simulator-{name}.log", "a")
        command = [str(harness.binary("vitalgate")), "simulate", profile, "--capture", str(ROOT / capture),
                   "--terminal-fd", str(master_fd)]
        command += ["--forever"] if forever else ["--linger", "3600"]
        # The simulator is the device, outside the emulation: it must see the real /dev/pts.
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}
        env["VITALGATE_PROFILES"] = str(ROOT / "DeviceProfiles")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log, pass_fds=(master_fd,), env=env)

    def hang_up(self):
        """Ends the simulator: its end of the terminal closes, and the host sees the hang-up of an unplugged cable."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def oximeter_capture() -> str:
    folder = ROOT / "DeviceProfiles" / OXIMETER_PROFILE
    captures = sorted(p for p in folder.glob("*.capture"))
    if not captures:
        raise SystemExit(f"demo: no capture beside the profile {OXIMETER_PROFILE} in {folder}")
    return str(captures[0].relative_to(ROOT))


def describe(observation: dict) -> str:
    codes = [c.get("code") for c in observation.get("code", {}).get("coding", [])]
    name = next((LOINC_NAMES[c] for c in codes if c in LOINC_NAMES), codes[0] if codes else "?")
    if "valueQuantity" in observation:
        q = observation["valueQuantity"]
        value = f"{q.get('value')} {q.get('unit', '')}"
    elif "component" in observation:
        parts = []
        for component in observation["component"]:
            q = component.get("valueQuantity")
            if q:
                parts.append(f"{q.get('value')}")
        value = "/".join(parts) + " mmHg"
    else:
        value = "(no value)"
    return f"{name:<18} {value:<14} at {observation.get('effectiveDateTime', '?')}"


def main() -> int:
    testbed.reexec_under_preload()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--unplug-at", type=float, default=None, help="seconds after start (default: a third of the duration)")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    say = (lambda *a: None) if args.check else (lambda *a: print(*a, flush=True))

    workdir = Path(args.workdir) if args.workdir else harness.temporary_directory("vitalgate-demo-")
    workdir.mkdir(parents=True, exist_ok=True)
    stop_requested = []
    signal.signal(signal.SIGINT, lambda *_: stop_requested.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))

    server = daemon = bed = None
    simulators: dict[str, Simulator] = {}
    started = time.monotonic()
    seen: dict[str, dict] = {}
    events = []
    try:
        say(f"== Starting the local FHIR server (sekmet-fhir on 127.0.0.1); files in {workdir}")
        server = harness.FHIRServer(workdir, max_seconds=int(args.duration) + 600)
        patient_id = server.create_patient()
        say(f"   {server.base}  — the demo citizen cccd:{harness.PATIENT_VALUE} is Patient/{patient_id}"
            " (099 is no province code: no real person)")

        # After the server: the testbed sets UMOCKDEV_DIR for this process's later children.
        bed = testbed.Testbed()
        say("== Plugging in two simulated USB devices (umockdev)")
        for name, profile, capture, forever in (("bp", "omron/hem-790it", BP_CAPTURE, False),
                                                ("oximeter", OXIMETER_PROFILE, oximeter_capture(), True)):
            device = "omron-hem-790it" if name == "bp" else "cp2102-a"
            bed.add(device)
            simulators[name] = Simulator(workdir, name, profile, capture, bed.master_fd(device), forever)
            say(f"   {name:<9} {bed.node(device):<13} {profile:<20} replaying {capture}")

        config = harness.write_config(workdir, server.base, batch_size=20)
        settings = json.loads(config.read_text())
        settings["devices"] = {"profiles": str(ROOT / "DeviceProfiles")}
        config.write_text(json.dumps(settings, indent=2))
        say("== Starting vitalgated (its udev, /sys and /dev are the emulation's; everything else is real)")
        daemon_log = open(workdir / "vitalgated.log", "a")
        daemon = subprocess.Popen([str(harness.binary("vitalgated")), "--config", str(config)], env=bed.env(),
                                  stdout=daemon_log, stderr=subprocess.STDOUT)
        say(f"   log: {workdir / 'vitalgated.log'}")
        say("== Readings arriving in the citizen's record on the server:")

        unplug_at = args.unplug_at if args.unplug_at is not None else args.duration / 3
        unplugged_at = replugged = None
        query = f"/Observation?subject=Patient/{patient_id}&_count=500"
        while not stop_requested and time.monotonic() - started < args.duration:
            bed.pump(1.0)
            elapsed = time.monotonic() - started
            if unplugged_at is None and elapsed >= unplug_at:
                say("   -- unplugging the oximeter")
                simulators["oximeter"].hang_up()
                bed.remove("cp2102-a")
                unplugged_at = elapsed
                events.append(("unplugged", round(elapsed, 1)))
            elif unplugged_at is not None and replugged is None and elapsed >= unplugged_at + 5:
                say("   -- plugging the oximeter in again")
                bed.readd("cp2102-a")
                simulators["oximeter"] = Simulator(workdir, "oximeter-2", OXIMETER_PROFILE, oximeter_capture(),
                                                   bed.master_fd("cp2102-a"), True)
                replugged = elapsed
                events.append(("replugged", round(elapsed, 1)))
            if daemon.poll() is not None:
                raise RuntimeError(f"vitalgated exited with {daemon.returncode}; see {workdir / 'vitalgated.log'}")
            for observation in server.search_all(query):
                if observation["id"] not in seen:
                    seen[observation["id"]] = observation
                    say(f"   {time.monotonic() - started:6.1f} s  {describe(observation)}")
    except KeyboardInterrupt:
        pass
    finally:
        exit_code = None
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            try:
                exit_code = daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                exit_code = daemon.wait()
        elif daemon is not None:
            exit_code = daemon.returncode
        for simulator in simulators.values():
            simulator.hang_up()
        final = server.search_all(f"/Observation?subject=Patient/{patient_id}&_count=500") if server else []
        feature_reports = [r.hex() for r in bed.feature_reports("omron-hem-790it")] if bed and "omron-hem-790it" in bed.devices else []
        server_base = server.base if server else ""
        if server:
            server.stop()
        if bed:
            bed.close()

    log_text = (workdir / "vitalgated.log").read_text() if (workdir / "vitalgated.log").exists() else ""
    if args.check:
        queue = harness.outbox_states(str(workdir / "state")) if (workdir / "state").exists() else {}
        print(json.dumps({"workdir": str(workdir), "daemonExit": exit_code, "events": events, "queue": queue,
                          "featureReports": feature_reports, "observations": final, "daemonLog": log_text.splitlines()}))
    else:
        say(f"== Stopped after {time.monotonic() - started:.0f} s: {len(final)} Observations in the citizen's record.")
        say(f"   The server's files stay in {workdir / 'fhir'}; the daemon's log in {workdir / 'vitalgated.log'}.")
        say(f"   While the demo runs, look yourself: curl '{server_base}/Observation?subject=Patient/{patient_id}'")
    return 0 if exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
