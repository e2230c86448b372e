"""vitalgated as users meet it, against the real FHIR server: crashes, a full disk, a corrupt database."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crash-cycles"))
import crash_cycles  # noqa: E402
import harness  # noqa: E402


def test_twenty_sigkill_cycles_lose_and_duplicate_nothing(tmp_path):
    result = crash_cycles.run(cycles=20, seed=20261121, workdir=tmp_path)
    print(json.dumps(result))
    assert result["kills"] == 20 and result["produced"] > 0
    assert result["killsDuringUpload"] >= 1, "no kill landed during an upload"
    assert crash_cycles.verdict(result) == []
    # No patient identifier in the journal, however the daemon died (ARCHITECTURE §7.7).
    for log in tmp_path.glob("*.log"):
        if log.name.startswith(("daemon", "final")):
            text = log.read_text()
            assert harness.PATIENT_VALUE not in text and "cccd" not in text, log


def test_a_corrupt_database_at_start_is_set_aside_and_the_daemon_works(server, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.db").write_bytes(b"this is not an SQLite database, a power cut wrote garbage here\n" * 64)
    config = harness.write_config(tmp_path, server.base, state=state)
    daemon = harness.Daemon(tmp_path, config)
    try:
        assert daemon.wait_ready(), daemon.log_path.read_text()
        source = harness.ReadingSource(seed=7)
        client = harness.IngestClient(daemon.socket_path)
        answer = client.send([source.make(900_000 + n) for n in range(3)])
        client.close()
        assert answer["ok"], answer
        harness.wait_drained(str(state))
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log_path.read_text()
    aside = list(state.glob("outbox.db.corrupt-*"))
    assert aside, "the damaged file was not kept for inspection"
    log = daemon.log_path.read_text()
    assert "corrupt" in log and aside[0].name in log, log


def test_a_corrupted_row_is_quarantined_and_counted_while_the_rest_is_delivered(server, tmp_path):
    import sqlite3
    state = tmp_path / "state"
    config = harness.write_config(tmp_path, "http://127.0.0.1:9/fhir", state=state)  # nothing listens: stays pending
    daemon = harness.Daemon(tmp_path, config)
    assert daemon.wait_ready(), daemon.log_path.read_text()
    source = harness.ReadingSource(seed=8)
    client = harness.IngestClient(daemon.socket_path)
    assert client.send([source.make(800_000 + n) for n in range(4)])["ok"]
    client.close()
    assert daemon.terminate() == 0
    # A bit flip in one stored reading, as a failing SD card would make it.
    with sqlite3.connect(state / "outbox.db") as db:
        row = db.execute("SELECT id, payload FROM readings ORDER BY id LIMIT 1").fetchone()
        db.execute("UPDATE readings SET payload = ? WHERE id = ?", (row[1].replace("124", "125", 1) if "124" in row[1]
                                                                    else row[1][:-2] + "x}", row[0]))
    harness.write_config(tmp_path, server.base, state=state)
    daemon = harness.Daemon(tmp_path, config, name="after")
    try:
        assert daemon.wait_ready(), daemon.log_path.read_text()
        counts = harness.wait_drained(str(state))
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log_path.read_text()
    queue = json.loads(subprocess.run([str(harness.binary("vitalgate")), "queue", "--json", "--state-dir", str(state)],
                                      capture_output=True, text=True, check=True).stdout)
    assert queue["quarantined"] == 1, queue
    assert counts["delivered"] == 3, counts
    assert "quarantin" in daemon.log_path.read_text()


def can_mount() -> list[str] | None:
    """A private mount namespace for a small tmpfs: root's own, or an unprivileged user namespace."""
    for prefix in (["unshare", "-m"], ["unshare", "-Urm"]):
        if shutil.which("unshare") and subprocess.run(prefix + ["true"], capture_output=True).returncode == 0:
            if prefix == ["unshare", "-m"] and os.geteuid() != 0:
                continue
            return prefix
    return None


@pytest.mark.parametrize("reserve_mib", [0, 1])
def test_a_full_disk_stops_ingest_without_acknowledging_and_recovers(server, tmp_path, reserve_mib):
    prefix = can_mount()
    assert prefix, "this machine can neither mount a tmpfs as root nor make a user namespace"
    scenario = Path(__file__).with_name("disk_full_scenario.py")
    result = subprocess.run(prefix + [sys.executable, str(scenario), "--server", server.base, "--workdir", str(tmp_path),
                                      "--reserve-mib", str(reserve_mib)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    print(report)
    assert report["refusedWhileFull"] >= 1
    assert report["daemonAliveWhileFull"]
    assert report["acknowledgedAfterSpaceReturned"] == report["sentAfterSpaceReturned"]
    assert report["logMentionsFull"], "the full disk was not reported in the journal"
    # Every reading the daemon acknowledged reached the server, once; none it refused was acknowledged.
    times = {text[:19] for text in harness.effective_times(server, server.patient_id)}
    missing = [device_time for device_time in report["acknowledgedDeviceTimes"] if device_time not in times]
    assert not missing, missing
    assert all(count == 1 for count in harness.server_readings(server, server.patient_id).values())


def collect_notifications(tmp_path, server, environment: dict, seconds: float) -> tuple[list[str], int]:
    """Runs vitalgated with a NOTIFY_SOCKET of ours for `seconds`, then SIGTERM; returns the messages and exit code."""
    notify_path = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(notify_path)
    receiver.settimeout(0.2)
    config = harness.write_config(tmp_path, server.base)
    log = open(tmp_path / "daemon.log", "w")
    process = subprocess.Popen([str(harness.binary("vitalgated")), "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "NOTIFY_SOCKET": notify_path, **environment})
    messages: list[str] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                messages += receiver.recv(4096).decode().split("\n")
            except socket.timeout:
                pass
        process.terminate()
        code = process.wait(30)
        receiver.settimeout(1)
        try:
            while True:
                messages += receiver.recv(4096).decode().split("\n")
        except socket.timeout:
            pass
    finally:
        harness.end_process(process)
        receiver.close()
        log.close()
    return messages, code


def test_systemd_hears_ready_then_watchdog_pings_then_stopping(server, tmp_path):
    # WATCHDOG_PID naming another process (0): the watchdog is not this process's, so no pings.
    messages, code = collect_notifications(tmp_path, server, {"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "0"}, 3)
    assert code == 0
    assert "READY=1" in messages and "STOPPING=1" in messages, messages
    assert "WATCHDOG=1" not in messages, messages

    again = tmp_path / "again"
    again.mkdir()
    messages, code = collect_notifications(again, server, {"WATCHDOG_USEC": "400000"}, 3)
    assert code == 0
    ready = messages.index("READY=1")
    pings = [index for index, message in enumerate(messages) if message == "WATCHDOG=1"]
    # WATCHDOG_USEC=400 ms asks for a ping every 200 ms while the Outbox answers. Liveness, not timing: at least a
    # few pings in 3 s, all after READY, none after STOPPING.
    assert len(pings) >= 3, messages
    assert min(pings) > ready and max(pings) < messages.index("STOPPING=1"), messages


def test_a_secret_other_users_can_read_stops_the_daemon_at_start_not_at_the_first_upload(tmp_path):
    # Nothing listens at the base URL: an exposed token must be found without any upload being tried.
    token = tmp_path / "token"
    token.write_text("not-a-real-token\n")
    token.chmod(0o644)
    config = harness.write_config(tmp_path, "http://127.0.0.1:9/fhir",
                                  extra_server={"auth": {"method": "bearer", "tokenFile": str(token)}})
    daemon = harness.Daemon(tmp_path, config)
    daemon.process.wait(60)
    code = daemon.terminate()
    log = daemon.log_path.read_text()
    assert code == 78, log
    assert "<3>configuration: " in log and str(token) in log and "server.auth.tokenFile" in log, log
    assert "not-a-real-token" not in log
    # Private to this user, the same file lets the daemon start.
    token.chmod(0o600)
    daemon = harness.Daemon(tmp_path, config, name="private")
    try:
        assert daemon.wait_ready(), daemon.log_path.read_text()
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log_path.read_text()
