"""Black-box harness for vitalgated: a real FHIR server, the daemon as a process, a simulated reading source
that behaves like a device (re-sends what was not acknowledged), and checks against the server's search.

Stdlib only. Everything binds 127.0.0.1 and is stopped by PID.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bluetooth-vm"))
from vmlib import wait_for  # noqa: E402,F401  (one polling helper for the harnesses, stdlib only)
PATIENT_SYSTEM = "http://fhir.hl7.org.vn/core/sid/cccd"
# 099 is no province code, so this can be no real person (the demo citizen).
PATIENT_VALUE = "099199000001"
BP_CODE = "150020"
HUB_MAC = "02:00:5E:10:00:01"  # locally administered


def end_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM by PID, then SIGKILL if it has not ended within `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def binary(name: str) -> Path:
    build = os.environ.get("VITALGATE_BUILD", "debug")
    path = ROOT / ".build" / build / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing. Fix: run `swift build` first")
    return path


class FHIRServer:
    """sekmet-fhir on 127.0.0.1 through scripts/fhir-server/serve."""

    def __init__(self, workdir: Path, max_seconds: int = 3600):
        self.data = workdir / "fhir"
        self.data.mkdir(parents=True, exist_ok=True)
        ready = workdir / "fhir-ready"
        self.log = open(workdir / "fhir.log", "w")
        self.process = subprocess.Popen(
            [str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/fhir-server/serve"), "--data", str(self.data),
             "--port", "0", "--ready-file", str(ready), "--max-seconds", str(max_seconds)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not (ready.exists() and ready.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the FHIR server did not start; see " + str(workdir / "fhir.log"))
            time.sleep(0.1)
        self.base = ready.read_text().split()[-1].rstrip("/")

    def request(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/fhir+json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def create_patient(self, value: str = PATIENT_VALUE) -> str:
        query = urllib.parse.quote(f"{PATIENT_SYSTEM}|{value}", safe="")
        status, body = self.request("POST", "/Patient",
                                    {"resourceType": "Patient", "identifier": [{"system": PATIENT_SYSTEM, "value": value}]},
                                    {"If-None-Exist": f"identifier={query}"})
        assert status in (200, 201), (status, body)
        status, found = self.request("GET", f"/Patient?identifier={query}")
        return found["entry"][0]["resource"]["id"]

    def search_all(self, path: str) -> list:
        resources = []
        status, bundle = self.request("GET", path)
        while True:
            assert status == 200, (status, bundle)
            resources += [entry["resource"] for entry in bundle.get("entry", [])]
            following = [link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"]
            if not following:
                return resources
            url = following[0]
            path = url[len(self.base):] if url.startswith(self.base) else url
            status, bundle = self.request("GET", path)

    def stop(self):
        end_process(self.process)
        self.log.close()


def write_config(workdir: Path, base_url: str, *, batch_size: int = 5, owner: str | None = f"cccd:{PATIENT_VALUE}",
                 state: Path | None = None, extra_server: dict | None = None) -> Path:
    state = state or workdir / "state"
    config = {
        "stateDirectory": str(state),
        "server": {"baseURL": base_url, "batchSize": batch_size,
                   "retry": {"initialMilliseconds": 50, "maximumSeconds": 1},
                   "timeouts": {"connectSeconds": 2, "requestSeconds": 10}, **(extra_server or {})},
        "gateway": {"ethernetAddress": HUB_MAC},
        "outbox": {"reservedFreeMiB": 1},
    }
    if owner:
        config["owner"] = owner
    path = workdir / "config.json"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)  # it names a citizen: the daemon warns about a configuration every user can read
    return path


class Daemon:
    """vitalgated as a child process with its journal-style log in a file."""

    def __init__(self, workdir: Path, config: Path, name: str = "daemon"):
        self.config = json.loads(config.read_text())
        self.socket_path = self.config.get("ingestSocket", self.config["stateDirectory"] + "/ingest.sock")
        self.log_path = workdir / f"{name}.log"
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen([str(binary("vitalgated")), "--config", str(config)],
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.connect(self.socket_path)
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def kill(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM by PID and the exit status; a daemon that does not stop within `timeout` is killed (status -9)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.close()
        return code


class IngestClient:
    def __init__(self, path: str, timeout: float = 30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""

    def send(self, readings: list[dict], patient: str | None = None) -> dict:
        request = {"readings": [{"reading": r, "patient": patient} for r in readings]}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the daemon closed the connection before acknowledging")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def close(self):
        self.sock.close()


class ReadingSource:
    """Blood-pressure readings as a cuff would produce them: each with its own device time, taken from a
    reading the real decoder produced, so the daemon sees exactly what a device session hands it."""

    def __init__(self, seed: int):
        frame = "167C00560061 00E8070B15 0A1E00 4800 0000".replace(" ", "")
        decoded = subprocess.run([str(binary("vitalgate")), "decode", "--profile", "bluetooth-sig/blood-pressure",
                                  "--characteristic", "2A35", frame], capture_output=True, text=True, check=True)
        self.template = json.loads(decoded.stdout.splitlines()[0])
        self.random = random.Random(seed)
        self.produced: dict[int, dict] = {}

    def make(self, number: int) -> dict:
        reading = json.loads(json.dumps(self.template))
        # One reading per minute from 2025-01-01 00:00 on, so every reading has a distinct device time.
        minutes = number
        day, minute_of_day = divmod(minutes, 1440)
        stamp = time.gmtime(1735689600 + day * 86400)
        reading["deviceTime"]["time"] = (f"{stamp.tm_year:04d}-{stamp.tm_mon:02d}-{stamp.tm_mday:02d}"
                                         f"T{minute_of_day // 60:02d}:{minute_of_day % 60:02d}:00")
        for value in reading["values"]:
            if value["type"] == "systolic":
                value["value"] = 100 + number % 60
            elif value["type"] == "diastolic":
                value["value"] = 60 + number % 30
        self.produced[number] = reading
        return reading

    @staticmethod
    def device_time(reading: dict) -> str:
        return reading["deviceTime"]["time"]


def outbox_states(state_dir: str) -> dict[str, int]:
    """Counts per state, read through `vitalgate queue --json` (the operator's own view)."""
    result = subprocess.run([str(binary("vitalgate")), "queue", "--json", "--state-dir", state_dir],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout)["counts"]


def wait_drained(state_dir: str, timeout: float = 300) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = outbox_states(state_dir)
        if counts.get("pending", 0) == 0 and counts.get("in-flight", 0) == 0:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Outbox did not drain: {counts}")
        time.sleep(0.2)


def server_readings(server: FHIRServer, patient_id: str) -> dict[str, int]:
    """Blood-pressure Observations on the server by identifier value, with how many copies each has."""
    observations = server.search_all(f"/Observation?subject=Patient/{patient_id}&code={BP_CODE}&_count=500")
    copies: dict[str, int] = {}
    for observation in observations:
        for identifier in observation.get("identifier", []):
            copies[identifier["value"]] = copies.get(identifier["value"], 0) + 1
    return copies


def effective_times(server: FHIRServer, patient_id: str) -> list[str]:
    observations = server.search_all(f"/Observation?subject=Patient/{patient_id}&code={BP_CODE}&_count=500")
    return [observation["effectiveDateTime"] for observation in observations]


def temporary_directory(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def validate_observations(observations: list[dict], directory: Path) -> subprocess.CompletedProcess:
    """Runs the project's FHIR validator (R4 + vital-signs + PHD rules) on each Observation; returncode 0: all valid."""
    files = []
    for number, observation in enumerate(observations):
        path = directory / f"observation-{number}.json"
        path.write_text(json.dumps(observation))
        files.append(str(path))
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([str(root / ".venv/bin/python"), str(root / "scripts/fhir-validator/vitalgate_fhir_validator.py"), *files],
                          capture_output=True, text=True)
