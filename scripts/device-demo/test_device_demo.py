"""End to end with emulated USB hardware: simulators on umockdev nodes -> udev discovery -> vitalgated's device
sessions -> Outbox -> the real FHIR server, with the oximeter unplugged and plugged in again while its
session runs. Runs the README's demo (scripts/device-demo/demo.py --check) under the system python3, which
has umockdev's bindings, and checks what it reports."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "daemon-harness"))
import harness  # noqa: E402

LOINC = "http://loinc.org"


def codes(observation: dict) -> set[str]:
    return {coding["code"] for coding in observation["code"]["coding"] if coding.get("system") == LOINC}


def run_demo(tmp_path: Path) -> dict:
    result = subprocess.run(["/usr/bin/python3", str(HERE / "demo.py"), "--check", "--bp-cut", "--duration", "45", "--unplug-at", "15",
                             "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_devices_to_the_citizens_record(tmp_path):
    report = run_demo(tmp_path)
    observations = report["observations"]
    log = report["daemonLog"]
    assert report["daemonExit"] == 0, log

    # The monitor's cable came out in the middle of its download and went back in: the new session read
    # the whole memory again, and the record it had already stored was not stored or uploaded twice.
    assert [event for event, _ in report["events"] if event.startswith("bp-")] == ["bp-unplugged", "bp-replugged"]
    # (The testbed keeps its own end of the emulated node open, so the daemon learns of the unplug from
    # udev rather than from a hang-up.)
    assert any("hidraw0" in line and ("disconnected" in line or "was removed" in line) for line in log), log
    assert any("hidraw1" in line and "session finished; 2 reading(s) stored" in line for line in log), log
    # The Omron monitor's whole memory, once, with exactly the values its real capture holds.
    expected = json.loads((ROOT / "DeviceProfiles/omron/hem-790it/790it-two-readings.expected.json").read_text())
    panels = [o for o in observations if "85354-9" in codes(o)]
    found = sorted((tuple(c["valueQuantity"]["value"] for c in o["component"]), o["effectiveDateTime"][:19]) for o in panels)
    wanted = sorted(((r["values"][0]["value"], r["values"][1]["value"]), r["deviceTime"]["time"]) for r in expected["readings"])
    assert found == wanted
    # The transport sent the monitor's mode feature report (report id 0, then 74 BC) through HIDIOCSFEATURE,
    # once per session.
    assert report["featureReports"] == ["0074bc", "0074bc"]

    # The oximeter streamed (one reading a second) before it was unplugged and again after it came back,
    # and every reading holds the values of the real packets it replays (titinho-cms50e-live: SpO2 99, pulse 60).
    assert [event for event, _ in report["events"] if not event.startswith("bp-") and event != "status"] == ["unplugged", "replugged"]
    # `vitalgate status` answered over the running daemon's control socket.
    assert [code for event, code in report["events"] if event == "status"] == [0]
    spo2 = [o for o in observations if codes(o) & {"59408-5", "2708-6"}]
    # (The monitor's pulse readings carry its 2008 record times; the oximeter's are timed by the hub.)
    pulse = [o for o in observations if "8867-4" in codes(o) and not o["effectiveDateTime"].startswith("2008")]
    assert len(spo2) >= 5, len(spo2)
    assert {o["valueQuantity"]["value"] for o in spo2} == {99}
    assert {o["valueQuantity"]["value"] for o in pulse} == {60}
    stored = {}
    for line in log:
        if "ttyUSB" in line and "reading(s) stored" in line:
            node = line.split("devices: ")[1].split()[0]
            stored[node] = stored.get(node, 0) + int(line.split("; ")[1].split()[0])
    assert stored.get("/dev/ttyUSB0", 0) >= 1 and stored.get("/dev/ttyUSB1", 0) >= 1, log
    assert any("ttyUSB0" in line and "was removed" in line for line in log), log

    # Once each on the server, nothing refused, nothing left behind.
    identifiers = [i["value"] for o in observations for i in o.get("identifier", [])]
    assert len(identifiers) == len(set(identifiers))
    assert report["queue"].get("dead", 0) == 0 and report["queue"].get("pending", 0) == 0, report["queue"]

    # What the server holds is valid FHIR R4 and follows the vital-signs profiles.
    validated = harness.validate_observations(observations, tmp_path)
    assert validated.returncode == 0, validated.stdout[-4000:] + validated.stderr[-2000:]

    # No citizen identifier in the daemon's journal.
    assert all(harness.PATIENT_VALUE not in line for line in log)
