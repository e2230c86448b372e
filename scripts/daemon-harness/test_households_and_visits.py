"""Households, visits and assignment end to end, with the real daemon, its control socket, the CLI and the real FHIR
server: a family's two-user cuff bound by slot, the unknown user held, a health worker's visit started from the QR
code of a citizen ID card, a record from before the visit held, the health worker as performer, a held reading
assigned by an operator, `vitalgate status` from the daemon, every Observation validated, and the daemon's log
grepped for every identifier, name and measured value of the flow (none may appear)."""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

GRANDFATHER = "099060000001"      # 099: no real province
GRANDMOTHER = "099163000002"
VISITED = "099085000009"          # digit 4 = 0: a man born in the 1900s; 85: 1985
PRACTITIONER = "urn:vitalgate:test:practitioner|CHW-0042"
# A QR payload in the 7-field layout of the chip-based card (fields: ID | old CMND | name | birth date | sex |
# address | issue date; layout from public descriptions, e.g. dangbaokhoa/identity-card's README). Fictional person.
QR_NAME = "Trần Văn Thử"
QR_ADDRESS = "Thôn Thử Nghiệm, Xã Không Có, Tỉnh Giả Định"
QR = f"{VISITED}|123456789|{QR_NAME}|15031985|Nam|{QR_ADDRESS}|01072021"
CUFF_SERIAL = "HOUSEHOLD-CUFF-1"
KIT_SERIAL = "KIT-CUFF-7"
# Measured values no log line could hold by chance (decimal mm[Hg]).
VALUES = {"household-1": 143.7, "unknown-user": 151.3, "kit-before": 127.9, "kit-during": 132.1, "kit-no-visit": 118.3}


def reading(template: dict, serial: str, systolic: float, slot: int | None, received: datetime.datetime,
            device_time: datetime.datetime | None, clock_lag_seconds: int | None = None) -> dict:
    r = json.loads(json.dumps(template))
    r["device"] = {"usb": f"0590:0028:{serial}"}
    for value in r["values"]:
        if value["type"] == "systolic":
            value["value"] = systolic
    r["userSlot"] = slot
    offset = datetime.timezone(datetime.timedelta(hours=7))
    r["receivedAt"] = received.astimezone(offset).isoformat(timespec="milliseconds")
    if device_time is None:
        r.pop("deviceTime", None)
    else:
        r["deviceTime"] = {"time": device_time.astimezone(offset).replace(tzinfo=None).isoformat(timespec="seconds"),
                           "clock": "unknown"}
    r.pop("clockCheck", None)
    if clock_lag_seconds is not None:
        hub = received.astimezone(offset)
        r["clockCheck"] = {"hubTime": hub.isoformat(timespec="milliseconds"),
                           "deviceTime": (hub - datetime.timedelta(seconds=clock_lag_seconds)).replace(tzinfo=None).isoformat(timespec="seconds")}
    return r


def cli(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(harness.binary("vitalgate")), *arguments], capture_output=True, text=True, input=stdin, timeout=60)


def test_households_visits_and_assignment_end_to_end(tmp_path: Path):
    server = harness.FHIRServer(tmp_path, max_seconds=900)
    daemon = None
    try:
        grandfather_id = server.create_patient(GRANDFATHER)
        visited_id = server.create_patient(VISITED)
        config = harness.write_config(tmp_path, server.base, owner=None)
        settings = json.loads(config.read_text())
        settings["household"] = {"members": [{"label": "ong", "patient": f"cccd:{GRANDFATHER}"},
                                             {"label": "ba", "patient": f"cccd:{GRANDMOTHER}"}],
                                 "devices": [{"serialNumber": CUFF_SERIAL, "slots": {"1": "ong", "2": "ba"}}]}
        settings["healthWorker"] = {"identifier": PRACTITIONER}
        config.write_text(json.dumps(settings))
        daemon = harness.Daemon(tmp_path, config)
        assert daemon.wait_ready(), daemon.log_path.read_text()
        control = str(tmp_path / "state" / "control.sock")
        template = harness.ReadingSource(1).make(0)
        ingest = harness.IngestClient(daemon.socket_path)
        now = datetime.datetime.now(datetime.timezone.utc)

        # The family's cuff: user 1 is grandfather's, the unknown user (0xFF) is nobody's; a kit cuff without a visit
        # belongs to no one of a two-person household.
        answer = ingest.send([
            reading(template, CUFF_SERIAL, VALUES["household-1"], 1, now, now - datetime.timedelta(minutes=3), 0),
            reading(template, CUFF_SERIAL, VALUES["unknown-user"], 255, now, now - datetime.timedelta(minutes=2), 0),
            reading(template, KIT_SERIAL, VALUES["kit-no-visit"], None, now, None),
        ])
        assert answer["ok"], answer

        # A visit started from the card's QR code, read from standard input as a scanner types it.
        started = cli("visit", "start", "--qr", "-", "--socket", control, stdin=QR + "\r\n")
        assert started.returncode == 0, started.stderr
        assert VISITED in started.stdout and QR_NAME not in started.stdout
        shown = json.loads(cli("visit", "--json", "--socket", control).stdout)
        started_at = datetime.datetime.fromisoformat(shown["open"]["startedAt"].replace("Z", "+00:00"))
        # The kit's record below is stamped on a whole second after the visit started (device clocks count seconds).
        during = started_at.replace(microsecond=0) + datetime.timedelta(seconds=1)
        answer = ingest.send([
            # From the kit cuff's memory, an hour before the visit (clock checked): never the visited citizen's.
            reading(template, KIT_SERIAL, VALUES["kit-before"], None, during, during - datetime.timedelta(hours=1), 0),
            # Measured during the visit (clock checked and right).
            reading(template, KIT_SERIAL, VALUES["kit-during"], None, during, during, 0),
        ])
        assert answer["ok"], answer
        ended = cli("visit", "end", "--socket", control)
        assert ended.returncode == 0, ended.stderr

        # The held ones, with their reasons; the operator assigns the kit reading taken without a visit.
        held = cli("readings", "--unassigned", "--json", "--socket", control)
        assert held.returncode == 0, held.stderr
        readings = json.loads(held.stdout)["readings"]
        reasons = {r["values"].split(",")[0]: r["reason"] for r in readings}
        assert len(readings) == 3, readings
        assert any("unknown user" in reason for reason in reasons.values()), reasons
        assert any("before visit" in reason for reason in reasons.values()), reasons
        assert any("bound to no household member" in reason for reason in reasons.values()), reasons
        no_visit = next(r for r in readings if "bound to no household member" in r["reason"])
        assigned = cli("assign", str(no_visit["id"]), "--patient", f"cccd:{GRANDFATHER}", "--socket", control)
        assert assigned.returncode == 0, assigned.stderr
        refused = cli("assign", str(no_visit["id"]), "--patient", f"cccd:{VISITED}", "--socket", control)
        assert refused.returncode == 1 and "cannot become" in refused.stderr, refused
        typo = cli("assign", str(readings[0]["id"]), "--patient", "cccd:09918500000", "--socket", control)
        assert typo.returncode == 1 and "12 digits" in typo.stderr and "09918500000" not in typo.stderr, typo

        counts = harness.wait_drained(str(tmp_path / "state"))
        assert counts["unassigned"] == 2 and counts["delivered"] == 3 and counts["dead"] == 0, counts

        status = cli("status", "--json", "--socket", control)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["daemon"]["pid"] == daemon.process.pid
        assert [m["label"] for m in report["members"]] == ["ong", "ba"]
        assert [r["kind"] for r in report["members"][0]["last"]] == ["blood-pressure"], report["members"]
        assert report["members"][1]["last"] == []
        assert report["visit"] is None and report["queue"]["unassigned"] == 2
        text = cli("status", "--socket", control)
        assert text.returncode == 0 and "Members:" in text.stdout and GRANDFATHER not in text.stdout, text

        # The server: grandfather has his slot-1 reading and the assigned one; the visited citizen has the reading
        # taken during the visit, with the health worker as performer, and nothing from before it.
        def systolics(patient_id: str) -> list[float]:
            found = server.search_all(f"/Observation?subject=Patient/{patient_id}&code={harness.BP_CODE}&_count=100")
            return sorted(c["valueQuantity"]["value"] for o in found for c in o.get("component", [])
                          if any(x["code"] == "8480-6" for x in c["code"]["coding"]))
        assert systolics(grandfather_id) == sorted([VALUES["household-1"], VALUES["kit-no-visit"]])
        assert systolics(visited_id) == [VALUES["kit-during"]]
        observations = server.search_all(f"/Observation?subject=Patient/{visited_id}&_count=100")
        system, value = PRACTITIONER.split("|")
        assert observations and all(o.get("performer") == [{"type": "Practitioner", "identifier": {"system": system, "value": value}}]
                                    for o in observations if o["code"]["coding"][0]["code"] != "67975"), observations
        everything = server.search_all(f"/Observation?subject=Patient/{grandfather_id}&_count=100") + observations
        assert all("performer" not in o for o in everything if o["subject"]["reference"].endswith(grandfather_id))
        validated = harness.validate_observations(everything, tmp_path)
        assert validated.returncode == 0, validated.stdout[-4000:] + validated.stderr[-2000:]
    finally:
        if daemon:
            daemon.terminate()
        server.stop()

    # The log leak check over the whole flow: no identifier, name, address or measured value in the daemon's log.
    log = daemon.log_path.read_text()
    assert "ready" in log
    secrets = [GRANDFATHER, GRANDMOTHER, VISITED, "123456789", QR_NAME, "Trần", QR_ADDRESS, "Thử Nghiệm", value, "CHW-0042",
               *[str(v) for v in VALUES.values()]]
    leaks = [(secret, line) for line in log.splitlines() for secret in secrets if secret in line]
    assert not leaks, leaks
