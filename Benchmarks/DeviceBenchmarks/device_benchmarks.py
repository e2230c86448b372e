#!/usr/bin/python3
"""Device benchmarks: device-to-server latency, and what an idle vitalgated with two devices attached costs.

    device_benchmarks.py [--runs N] [--latency-seconds S] [--idle-seconds S]

Both use the release build, the real FHIR server (sekmet-fhir on 127.0.0.1) and devices emulated by
umockdev, played by `vitalgate simulate` from the captures shipped beside the profiles (see
scripts/device-demo/demo.py for the set-up).

- `device-latency`: the Contec oximeter streams; one reading a second reaches the daemon. For every
  Observation on the server: its `meta.lastUpdated` (the server stored it) minus its `effectiveDateTime`
  (the hub received the reading; the oximeter has no clock, so effective time is the hub's receive time,
  in milliseconds). Same machine, same clock. Median, 90th percentile, min and max per run; the figure is
  the median of the runs' medians.
- `idle-daemon`: the blood-pressure monitor has finished its download and the oximeter is attached but
  silent (its session times out, and the daemon asks again with backoff, as on a real hub whose oximeter
  is switched off). After a settling time, over --idle-seconds: resident memory (VmRSS), CPU time
  (utime + stime of all threads) scaled to one minute, and wake-ups per second (voluntary plus
  involuntary context switches of all threads: each return from a blocking poll is one).

Prints one JSON object per line. Nothing is asserted: compare medians and ratios across commits.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "device-demo"))
sys.path.insert(0, str(ROOT / "scripts" / "daemon-harness"))
sys.path.insert(0, str(ROOT / "scripts" / "udev-harness"))

import harness  # noqa: E402
import testbed  # noqa: E402
from demo import BP_CAPTURE, OXIMETER_PROFILE, Simulator, oximeter_capture, stop_daemon  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def start(workdir: Path, bed, server, devices: list[tuple[str, str, str, str, bool]], simulators: dict):
    """Fills `simulators` as it goes, so the caller's cleanup stops what started even if a later step fails."""
    for name, device, profile, capture, forever in devices:
        bed.add(device)
        simulators[name] = Simulator(workdir, name, profile, capture, bed.master_fd(device), forever)
    config = harness.write_config(workdir, server.base, batch_size=20)
    settings = json.loads(config.read_text())
    settings["devices"] = {"profiles": str(ROOT / "DeviceProfiles")}
    settings["devices"]["serialBridges"] = [OXIMETER_PROFILE]
    config.write_text(json.dumps(settings, indent=2))
    log = open(workdir / "vitalgated.log", "a")
    return subprocess.Popen([str(harness.binary("vitalgated")), "--config", str(config)], env=bed.env(),
                            stdout=log, stderr=subprocess.STDOUT)


def stop(daemon, simulators, server, bed):
    try:
        stop_daemon(daemon, bed)
        for simulator in simulators.values():
            simulator.hang_up()
    finally:
        server.stop()
        if bed:
            bed.close()


def latency_run(seconds: float) -> dict:
    workdir = harness.temporary_directory("vitalgate-bench-latency-")
    server = harness.FHIRServer(workdir, max_seconds=int(seconds) + 600)
    bed = daemon = None
    simulators: dict = {}
    try:
        patient = server.create_patient()
        bed = testbed.Testbed()  # after the server: it sets UMOCKDEV_DIR for later children
        daemon = start(workdir, bed, server, [("oximeter", "cp2102-a", OXIMETER_PROFILE,
                                               oximeter_capture(workdir, seconds + 60), True)], simulators)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            bed.pump(0.5)
        observations = server.search_all(f"/Observation?subject=Patient/{patient}&_count=1000")
    finally:
        stop(daemon, simulators, server, bed)
    latencies = []
    for observation in observations:
        stored = observation.get("meta", {}).get("lastUpdated")
        effective = observation.get("effectiveDateTime")
        if stored and effective:
            latencies.append((parse_time(stored) - parse_time(effective)).total_seconds() * 1000)
    if not latencies:
        raise RuntimeError(f"no Observation reached the server; see {workdir}")
    latencies.sort()
    return {"observations": len(latencies), "median_ms": statistics.median(latencies),
            "p90_ms": latencies[int(0.9 * (len(latencies) - 1))], "min_ms": latencies[0], "max_ms": latencies[-1]}


def process_figures(pid: int) -> tuple[int, float, dict[int, int]]:
    """(VmRSS kB, CPU seconds of all threads, context switches by thread id)."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (the whole thread group)
    switches: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            count = 0
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    count += int(line.split()[1])
            switches[int(task.name)] = count
        except FileNotFoundError:
            pass  # a thread ended between the listing and the read
    return rss, cpu, switches


def switches_between(before: dict[int, int], after: dict[int, int]) -> int:
    """Context switches in the window, by thread: a thread born in it counts whole; one that ended in it is
    missed after the first sample (session threads come and go, so totals of the living would shrink)."""
    return sum(count - before.get(tid, 0) for tid, count in after.items())


def idle_run(seconds: float, settle: float) -> dict:
    workdir = harness.temporary_directory("vitalgate-bench-idle-")
    server = harness.FHIRServer(workdir, max_seconds=int(seconds + settle) + 600)
    bed = daemon = None
    simulators: dict = {}
    try:
        server.create_patient()
        bed = testbed.Testbed()
        daemon = start(workdir, bed, server, [
            ("bp", "omron-hem-790it", "omron/hem-790it", BP_CAPTURE, False),
            # Its real capture once, then silence: a switched-off oximeter on its cable.
            ("oximeter", "cp2102-a", OXIMETER_PROFILE, f"DeviceProfiles/{OXIMETER_PROFILE}/titinho-cms50e-live.capture", False),
        ], simulators)
        end = time.monotonic() + settle
        while time.monotonic() < end:
            bed.pump(0.5)
        rss0, cpu0, switches0 = process_figures(daemon.pid)
        began = time.monotonic()
        end = began + seconds
        while time.monotonic() < end:
            bed.pump(0.5)
        rss1, cpu1, switches1 = process_figures(daemon.pid)
        elapsed = time.monotonic() - began
        threads = len(list(Path(f"/proc/{daemon.pid}/task").iterdir()))
    finally:
        stop(daemon, simulators, server, bed)
    return {"rss_kib": rss1, "rss_kib_at_start": rss0, "cpu_ms_per_minute": (cpu1 - cpu0) * 1000 * 60 / elapsed,
            "wakeups_per_second": switches_between(switches0, switches1) / elapsed, "threads": threads, "seconds": round(elapsed, 1)}


def main() -> int:
    testbed.reexec_under_preload()
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--settle-seconds", type=float, default=20)
    args = parser.parse_args()
    os.environ.setdefault("VITALGATE_BUILD", "release")

    runs = [latency_run(args.latency_seconds) for _ in range(args.runs)]
    print(json.dumps({"benchmark": "device-latency", "runs": len(runs),
                      "median_ms": statistics.median(r["median_ms"] for r in runs),
                      "p90_ms_median": statistics.median(r["p90_ms"] for r in runs),
                      "min_ms": min(r["min_ms"] for r in runs), "max_ms": max(r["max_ms"] for r in runs),
                      "observations_per_run": [r["observations"] for r in runs]}), flush=True)

    idle = [idle_run(args.idle_seconds, args.settle_seconds) for _ in range(args.runs)]
    print(json.dumps({"benchmark": "idle-daemon", "runs": len(idle), "devices": 2,
                      "median_rss_kib": statistics.median(r["rss_kib"] for r in idle),
                      "median_cpu_ms_per_minute": statistics.median(r["cpu_ms_per_minute"] for r in idle),
                      "median_wakeups_per_second": statistics.median(r["wakeups_per_second"] for r in idle),
                      "threads": [r["threads"] for r in idle], "seconds_per_run": args.idle_seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
