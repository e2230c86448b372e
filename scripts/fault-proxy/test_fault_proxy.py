"""Tests of fault_proxy.py: every fault as a client sees it, against a standard-library upstream on 127.0.0.1.

The proxy runs as a real child process (its command line, ready line, stats file and signals are part of
what is tested) and is stopped by PID.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "fault_proxy.py")


class Upstream:
    """An HTTP/1.1 server that records what reached it and answers a JSON body of known size."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes, dict[str, str]]] = []
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with upstream.lock:
                    upstream.received.append((self.command, self.path, body, dict(self.headers.items())))
                    number = len(upstream.received)
                reply = json.dumps({"resourceType": "Bundle", "type": "transaction-response", "n": number,
                                    "padding": "x" * 2000}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_PUT = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ProxyProcess:
    def __init__(self, upstream_url: str, *arguments: str, stats_file: str | None = None) -> None:
        command = [sys.executable, PROXY, "--upstream", upstream_url, "--max-seconds", "120",
                   "--stop-on-stdin-eof", *arguments]
        if stats_file:
            command += ["--stats-file", stats_file]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        assert line.startswith("ready http://127.0.0.1:"), (line, self.process.stderr.read())
        self.url = line.split(" ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def stats(self) -> dict[str, int]:
        status, _, body = self.request("GET", "/__proxy/stats")
        assert status == 200
        return json.loads(body)

    def decisions(self) -> list[str]:
        return json.loads(self.request("GET", "/__proxy/decisions")[2])

    def stop(self) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process.stdin.close()
        self.process.stdout.close()
        self.process.stderr.close()
        return code


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def start_proxy(upstream):
    started: list[ProxyProcess] = []

    def start(*arguments: str, stats_file: str | None = None) -> ProxyProcess:
        proxy = ProxyProcess(upstream.url, *arguments, stats_file=stats_file)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def raw_exchange(port: int, request: bytes, timeout: float = 30) -> bytes:
    """Send one request on a fresh socket and read until the proxy closes (raises on RST)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/fhir+json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


BUNDLE = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
    {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-00000000000{index}",
     "resource": {"resourceType": "Observation", "identifier": [{"value": f"reading-{index}"}]},
     "request": {"method": "POST", "url": "Observation"}} for index in range(3)]}).encode()


def test_forwards_requests_and_counts_bytes(upstream, start_proxy):
    proxy = start_proxy()
    status, headers, body = proxy.request("POST", "/fhir", BUNDLE, {"Content-Type": "application/fhir+json"})
    assert status == 200 and json.loads(body)["n"] == 1
    assert upstream.received[0][:3] == ("POST", "/fhir", BUNDLE)
    stats = proxy.stats()
    assert stats["forwarded"] == 1 and stats["requests"] == 1
    assert stats["forwarded_request_bytes"] == len(BUNDLE)
    assert stats["forwarded_response_bytes"] == len(body)
    assert not any(key.startswith("fault.") for key in stats)


@pytest.mark.parametrize("code", [500, 503])
def test_status_faults_answer_without_calling_upstream(upstream, start_proxy, code):
    proxy = start_proxy("--sequence", f"status:{code}")
    status, headers, body = proxy.request("POST", "/fhir", BUNDLE)
    assert status == code
    assert json.loads(body)["resourceType"] == "OperationOutcome"
    assert upstream.count() == 0
    assert proxy.request("POST", "/fhir", BUNDLE)[0] == 200
    assert upstream.count() == 1
    assert proxy.stats()[f"fault.status:{code}"] == 1


def test_429_carries_retry_after(upstream, start_proxy):
    proxy = start_proxy("--sequence", "status:429,status:429:7", "--retry-after", "3")
    first = proxy.request("POST", "/fhir", BUNDLE)
    second = proxy.request("POST", "/fhir", BUNDLE)
    assert (first[0], first[1]["Retry-After"]) == (429, "3")
    assert (second[0], second[1]["Retry-After"]) == (429, "7")
    assert upstream.count() == 0


def test_timeout_never_answers_and_releases_when_the_client_gives_up(upstream, start_proxy):
    proxy = start_proxy("--sequence", "timeout", "--timeout-cap", "60")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5) as sock:
        sock.sendall(post("/fhir", BUNDLE))
        with pytest.raises(socket.timeout):
            sock.recv(1)
    assert upstream.count() == 0
    # The proxy is still serving others, and counted the held request.
    assert proxy.request("POST", "/fhir", BUNDLE)[0] == 200
    assert proxy.stats()["fault.timeout"] == 1


def test_timeout_cap_closes_the_connection(upstream, start_proxy):
    proxy = start_proxy("--sequence", "timeout", "--timeout-cap", "0.3")
    # Liveness bound only: the proxy closes after its cap, long before the client's 30 s.
    assert raw_exchange(proxy.port, post("/fhir", BUNDLE)) == b""
    assert upstream.count() == 0


def test_reset_closes_with_rst_before_upstream(upstream, start_proxy):
    proxy = start_proxy("--sequence", "reset")
    with pytest.raises(ConnectionResetError):
        raw_exchange(proxy.port, post("/fhir", BUNDLE))
    assert upstream.count() == 0
    assert proxy.stats()["fault.reset"] == 1


def test_reset_after_forward_reaches_upstream(upstream, start_proxy):
    proxy = start_proxy("--sequence", "reset-after-forward")
    with pytest.raises(ConnectionResetError):
        raw_exchange(proxy.port, post("/fhir", BUNDLE))
    assert upstream.count() == 1
    stats = proxy.stats()
    assert stats["fault.reset-after-forward"] == 1 and stats["forwarded"] == 1


def test_truncate_sends_part_of_a_processed_response(upstream, start_proxy):
    proxy = start_proxy("--sequence", "truncate,truncate")
    reply = raw_exchange(proxy.port, post("/fhir", BUNDLE))
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    length = int(next(line.split(":")[1] for line in lines if line.lower().startswith("content-length")))
    assert 0 < len(body) < length
    assert upstream.count() == 1
    # A standard client rejects it.
    connection = proxy.connection()
    connection.request("POST", "/fhir", body=BUNDLE)
    with pytest.raises(http.client.IncompleteRead):
        connection.getresponse().read()
    connection.close()
    assert upstream.count() == 2 and proxy.stats()["fault.truncate"] == 2


@pytest.mark.parametrize("fault,code", [("garbage-200", 200), ("garbage-502", 502)])
def test_garbage_answers_are_html_and_skip_upstream(upstream, start_proxy, fault, code):
    proxy = start_proxy("--sequence", fault)
    status, headers, body = proxy.request("POST", "/fhir", BUNDLE)
    assert status == code
    assert headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        json.loads(body)
    assert upstream.count() == 0


def test_expired_token_once_per_distinct_bearer(upstream, start_proxy):
    proxy = start_proxy("--expire-tokens")
    first = proxy.request("POST", "/fhir", BUNDLE, {"Authorization": "Bearer token-a"})
    assert first[0] == 401
    assert 'error="invalid_token"' in first[1]["WWW-Authenticate"]
    assert json.loads(first[2])["issue"][0]["code"] == "expired"
    assert proxy.request("POST", "/fhir", BUNDLE, {"Authorization": "Bearer token-a"})[0] == 200
    assert proxy.request("POST", "/fhir", BUNDLE, {"Authorization": "Bearer token-b"})[0] == 401
    assert proxy.request("POST", "/fhir", BUNDLE, {"Authorization": "Bearer token-b"})[0] == 200
    assert proxy.request("POST", "/fhir", BUNDLE)[0] == 200
    assert upstream.count() == 3
    assert proxy.stats()["fault.expired-token"] == 2


def test_status_401_in_a_sequence_has_a_challenge(upstream, start_proxy):
    proxy = start_proxy("--sequence", "status:401")
    status, headers, _ = proxy.request("POST", "/fhir", BUNDLE, {"Authorization": "Bearer t"})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")


def test_poison_marker_rejects_with_an_operation_outcome_naming_the_entry(upstream, start_proxy):
    marker = "reading-1"
    proxy = start_proxy("--poison", marker)
    status, headers, body = proxy.request("POST", "/fhir", BUNDLE)
    assert status == 422
    issue = json.loads(body)["issue"][0]
    assert issue["code"] == "processing"
    assert "Bundle.entry[1]" in issue["diagnostics"]
    assert "urn:uuid:00000000-0000-0000-0000-000000000001" in issue["diagnostics"]
    assert issue["expression"] == ["Bundle.entry[1]"]
    assert upstream.count() == 0
    # Without the poisoned entry the same kind of transaction goes through; the rejection repeats.
    clean = BUNDLE.replace(b"reading-1", b"reading-9")
    assert proxy.request("POST", "/fhir", clean)[0] == 200
    assert proxy.request("POST", "/fhir", BUNDLE)[0] == 422
    assert proxy.stats()["fault.poison"] == 2 and upstream.count() == 1


def test_faults_limited_to_method_and_path(upstream, start_proxy):
    proxy = start_proxy("--sequence", "status:503,status:503", "--match-method", "POST", "--match-path", "/fhir")
    assert proxy.request("GET", "/fhir/metadata")[0] == 200
    assert proxy.request("POST", "/fhir/Patient", b"{}")[0] == 200
    assert proxy.request("POST", "/fhir", BUNDLE)[0] == 503
    assert proxy.request("GET", "/fhir/metadata")[0] == 200
    assert proxy.request("POST", "/fhir/", BUNDLE)[0] == 503
    assert proxy.request("POST", "/fhir", BUNDLE)[0] == 200
    stats = proxy.stats()
    assert (stats["requests"], stats["matched"], stats["forwarded"], stats["fault.status:503"]) == (6, 3, 4, 2)
    assert proxy.decisions() == ["status:503", "status:503", "forward"]


def test_keep_alive_carries_faults_and_forwards_on_one_connection(upstream, start_proxy):
    proxy = start_proxy("--sequence", "forward,status:503,forward")
    connection = proxy.connection()
    statuses = []
    for _ in range(3):
        connection.request("POST", "/fhir", body=BUNDLE)
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
    connection.close()
    assert statuses == [200, 503, 200]
    assert proxy.stats()["connections"] == 2  # this one, then the stats request's own


def test_chunked_and_expect_continue_bodies_are_forwarded_whole(upstream, start_proxy):
    proxy = start_proxy()
    chunked = (b"POST /fhir HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (BUNDLE[:100], BUNDLE[100:]))
               + b"0\r\n\r\n")
    assert raw_exchange(proxy.port, chunked).startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.sendall(post("/fhir", b"", "Expect: 100-continue\r\nConnection: close\r\n").replace(
            b"Content-Length: 0", b"Content-Length: %d" % len(BUNDLE)))
        assert sock.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BUNDLE)
        assert sock.recv(12) == b"HTTP/1.1 200"
    assert [entry[2] for entry in upstream.received] == [BUNDLE, BUNDLE]
    assert "Expect" not in upstream.received[1][3]


def test_seeded_plans_replay_exactly(upstream, start_proxy):
    arguments = ("--probability", "status:503=0.3", "--probability", "status:500=0.2", "--sequence", "status:429")

    def run(seed: int) -> tuple[list[int], list[str]]:
        proxy = start_proxy("--seed", str(seed), *arguments)
        statuses = [proxy.request("POST", "/fhir", BUNDLE)[0] for _ in range(40)]
        return statuses, proxy.decisions()

    first, again, other = run(11), run(11), run(12)
    assert first == again
    assert first[0][0] == 429 and first[1][0] == "status:429"
    assert {503, 500, 200} <= set(first[0])
    assert other[1] != first[1]


def test_plan_file_and_counters_written_on_sigterm(upstream, start_proxy, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"seed": 3, "sequence": ["status:503", "garbage-200"], "poison": ["reading-2"],
                                "match": {"method": "POST"}}))
    stats_file = tmp_path / "stats.json"
    proxy = start_proxy("--plan", str(plan), stats_file=str(stats_file))
    assert proxy.request("POST", "/fhir", BUNDLE.replace(b"reading-2", b"reading-7"))[0] == 503
    assert proxy.request("POST", "/fhir", BUNDLE.replace(b"reading-2", b"reading-7"))[0] == 200  # garbage-200
    assert proxy.request("POST", "/fhir", BUNDLE)[0] == 422
    assert proxy.request("POST", "/fhir", BUNDLE.replace(b"reading-2", b"reading-7"))[0] == 200
    assert proxy.stop() == 0
    stats = json.loads(stats_file.read_text())
    assert stats["fault.status:503"] == 1 and stats["fault.garbage-200"] == 1 and stats["fault.poison"] == 1
    assert stats["forwarded"] == 1 and stats["requests"] == 4
    assert all(isinstance(value, int) for value in stats.values())


def test_connection_limit_turns_away_extra_clients(upstream, start_proxy):
    proxy = start_proxy("--max-connections", "1")
    held = proxy.connection()
    held.request("GET", "/fhir/metadata")
    held.getresponse().read()  # keeps its connection (and the only slot) open
    status, _, body = proxy.request("GET", "/fhir/metadata")
    assert status == 503 and b"too many connections" in body
    held.close()


@pytest.mark.parametrize("arguments", [
    ("--listen", "0.0.0.0:0"),
    ("--listen", "192.168.1.5:8080"),
    ("--listen", "[::]:0"),
    ("--upstream", "http://10.1.2.3:8080"),
    ("--upstream", "https://127.0.0.1:8443"),
])
def test_refuses_anything_but_loopback(upstream, arguments):
    command = [sys.executable, PROXY, "--upstream", upstream.url, "--max-seconds", "5", *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "127.0.0.1" in result.stderr
    assert upstream.count() == 0


@pytest.mark.parametrize("plan", [
    {"sequence": ["explode"]},
    {"probabilities": {"status:503": 0.8, "reset": 0.5}},
    {"sequence": ["status:200"]},
    {"surprise": 1},
])
def test_rejects_bad_plans(upstream, plan):
    command = [sys.executable, PROXY, "--upstream", upstream.url, "--plan-json", json.dumps(plan)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("fault_proxy: ")
