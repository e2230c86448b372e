"""Tests of scripts/fhir-server/serve and query: the ready line, loopback-only binding, bounded life, and
the FHIR behaviour VitalGate's upload relies on (conditional create replays, conditional references).
Servers run as child processes on 127.0.0.1 and are stopped by PID.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVE = os.path.join(HERE, "serve")
QUERY = os.path.join(HERE, "query")


class Server:
    def __init__(self, data_dir: str, *arguments: str, stdin=subprocess.PIPE) -> None:
        self.ready_file = os.path.join(data_dir, "ready")
        self.process = subprocess.Popen([sys.executable, SERVE, "--data", data_dir, "--ready-file", self.ready_file,
                                         "--max-seconds", "300", *arguments],
                                        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.line = self.process.stdout.readline().strip()
        assert self.line.startswith("ready "), (self.line, self.stop())
        self.base = self.line.split(" ", 1)[1]

    def stop(self) -> str:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)
        errors = self.process.stderr.read()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream:
                stream.close()
        return errors


def query(base: str, path: str = "", *arguments: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, QUERY, base, *([path] if path else []), *arguments]
    if data is not None:
        command += ["--data", "-"]
    return subprocess.run(command, input=data, capture_output=True, timeout=120)


def envelope(base: str, path: str = "", *arguments: str, data: bytes | None = None) -> dict:
    result = query(base, path, "--envelope", *arguments, data=data)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def listening_addresses(port: int) -> list[str]:
    """Local addresses in LISTEN state on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel writes)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                address, port_hex = fields[1].split(":")
                if int(port_hex, 16) == port and fields[3] == "0A":
                    found.append(address)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(str(tmp_path_factory.mktemp("fhir")))
    yield running
    running.stop()


def test_ready_line_names_a_loopback_base_and_the_socket_is_bound_to_loopback_only(server):
    assert server.base.startswith("http://127.0.0.1:") and server.base.endswith("/fhir")
    with open(server.ready_file) as handle:
        assert handle.read() == server.line + "\n"
    port = int(server.base.split(":")[2].split("/")[0])
    assert listening_addresses(port) == ["0100007F"]  # 127.0.0.1, nothing on 0.0.0.0 or ::
    metadata = envelope(server.base, "metadata")
    assert metadata["status"] == 200 and metadata["body"]["resourceType"] == "CapabilityStatement"


def test_conditional_create_replays_as_200_and_unknown_conditional_reference_fails(server):
    patient_value = f"p-{uuid.uuid4()}"
    patient = json.dumps({"resourceType": "Patient",
                          "identifier": [{"system": "urn:vitalgate:test", "value": patient_value}]}).encode()
    created = envelope(server.base, "Patient", "-H", f"If-None-Exist: identifier=urn:vitalgate:test|{patient_value}",
                       data=patient)
    assert created["status"] == 201
    identifier = f"urn:vitalgate:test:{uuid.uuid4()}"

    def bundle(subject_value: str) -> bytes:
        return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {"resourceType": "Observation", "status": "final",
                         "identifier": [{"system": "urn:ietf:rfc:3986", "value": identifier}],
                         "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                         "subject": {"reference": f"Patient?identifier=urn:vitalgate:test|{subject_value}"},
                         "valueQuantity": {"value": 61, "unit": "/min", "system": "http://unitsofmeasure.org",
                                           "code": "/min"}},
            "request": {"method": "POST", "url": "Observation",
                        "ifNoneExist": f"identifier=urn:ietf:rfc:3986|{identifier}"}}]}).encode()

    first = envelope(server.base, data=bundle(patient_value))
    again = envelope(server.base, data=bundle(patient_value))
    assert first["status"] == 200 and first["body"]["entry"][0]["response"]["status"].startswith("201")
    assert again["status"] == 200 and again["body"]["entry"][0]["response"]["status"].startswith("200")
    nobody = envelope(server.base, data=bundle("nobody-" + patient_value))
    assert nobody["status"] == 404 and nobody["body"]["resourceType"] == "OperationOutcome"
    count = envelope(server.base, f"Observation?identifier=urn:ietf:rfc:3986|{identifier}&_summary=count")
    assert count["body"]["total"] == 1


def test_query_plain_mode_prints_json_and_fails_on_http_errors(server):
    ok = query(server.base, "metadata")
    assert ok.returncode == 0 and json.loads(ok.stdout)["resourceType"] == "CapabilityStatement"
    missing = query(server.base, "Patient/does-not-exist")
    assert missing.returncode == 1 and b"answered 404" in missing.stderr


@pytest.mark.parametrize("url", ["http://192.168.1.10:8080/fhir", "http://example.org/fhir", "ftp://127.0.0.1/x"])
def test_query_refuses_anything_but_loopback(url):
    result = query(url, "metadata")
    assert result.returncode == 2 and b"loopback" in result.stderr


def test_stops_by_itself_after_max_seconds(tmp_path):
    process = subprocess.run([sys.executable, SERVE, "--data", str(tmp_path), "--max-seconds", "8"],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 0
    assert process.stdout.startswith("ready http://127.0.0.1:")
    assert "max-seconds" in process.stderr


def test_stops_on_sigterm_and_when_stdin_closes(tmp_path):
    by_signal = Server(str(tmp_path / "a"))
    assert "stopping (SIGTERM)" in by_signal.stop()
    by_eof = Server(str(tmp_path / "b"), "--stop-on-stdin-eof")
    by_eof.process.stdin.close()
    assert by_eof.process.wait(timeout=60) == 0
    assert "stopping (stdin closed)" in by_eof.stop()


@pytest.mark.parametrize("arguments,message", [
    (["--url-host", "example.org"], "--url-host"),
    (["--auth", "kerberos"], "unknown scheme"),
    (["--smart-client", "c1:/nonexistent.pem", "--auth", "smart"], "does not exist"),
])
def test_rejects_bad_options(tmp_path, arguments, message):
    result = subprocess.run([sys.executable, SERVE, "--data", str(tmp_path), *arguments],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr
