#!/usr/bin/env python3
"""A loopback-only HTTP/1.1 reverse proxy that injects faults, for VitalGate's upload tests (stdlib only).

    fault_proxy.py --upstream http://127.0.0.1:PORT [--listen 127.0.0.1:PORT] [--plan FILE] [--plan-json JSON]
                   [--seed N] [--sequence F,F,...] [--probability F=P]... [--poison MARKER]... [--expire-tokens]
                   [--match-method M] [--match-path P] [--match-path-prefix P] [--retry-after S]
                   [--timeout-cap S] [--max-seconds S] [--max-connections N] [--stats-file F] [--ready-file F]
                   [--stop-on-stdin-eof]

Prints `ready http://127.0.0.1:PORT` once listening. Both ends must be on 127.0.0.1.

The fault plan (JSON; command-line options override the file):
  {"seed": 7,
   "sequence": ["status:503", "forward", "truncate"],   # the first matching requests, in order
   "probabilities": {"reset": 0.1, "status:429": 0.05},  # every later matching request draws once
   "match": {"method": "POST", "path": "/fhir", "path_prefix": null},  # which requests faults apply to
   "poison": ["MARKER"],          # a request whose body contains a marker: 422 OperationOutcome, never forwarded
   "expire_tokens": true,         # first matching request per distinct Bearer token: 401 "expired"
   "retry_after": 1, "timeout_cap": 60, "truncate_fraction": 0.5}

Faults: forward (no fault), status:CODE[:RETRY_AFTER] (upstream not called; 429 always carries
Retry-After, 401 a WWW-Authenticate challenge), timeout (read the request, never answer; hold until the
client gives up or timeout_cap), reset (read the request, close with RST), reset-after-forward (the
upstream processed it, then RST), truncate (the upstream processed it; the full Content-Length is sent
with only part of the body, then the connection closes), garbage-200 (a 200 HTML page, upstream not
called), garbage-502 (an HTML 502 from "a gateway", upstream not called).

A request draws from the seeded generator only when it is past the sequence, so a plan replays exactly
for the same order of arrival. GET /__proxy/stats answers the counters (flat JSON of integers);
GET /__proxy/decisions the fault chosen for each matching request, in order. The counters are also
written to --stats-file on exit.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException, responses

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = {LOOPBACK, "localhost"}
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024
IDLE_SECONDS = 30
UPSTREAM_SECONDS = 300
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length", "expect"}
UPSTREAM_FAULTS = {"forward", "truncate", "reset-after-forward"}
SIMPLE_FAULTS = {"forward", "timeout", "reset", "reset-after-forward", "truncate", "garbage-200", "garbage-502"}

GARBAGE_200 = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=\"post\">"
               b"<p>This network requires you to sign in before you can continue.</p></form></body></html>\n")
GARBAGE_502 = (b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
               b"<p>The upstream server did not answer.</p></body></html>\n")


class PlanError(ValueError):
    pass


def check_fault(name: str) -> str:
    if name in SIMPLE_FAULTS:
        return name
    parts = name.split(":")
    if parts[0] == "status" and len(parts) in (2, 3) and all(part.isdigit() for part in parts[1:]):
        if 400 <= int(parts[1]) <= 599:
            return name
    raise PlanError(f"unknown fault {name!r}: use forward, status:CODE[:RETRY_AFTER] (400-599), "
                    f"{', '.join(sorted(SIMPLE_FAULTS - {'forward'}))}")


@dataclass
class Plan:
    seed: int = 0
    sequence: list[str] = field(default_factory=list)
    probabilities: dict[str, float] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None
    path_prefix: str | None = None
    poison: list[str] = field(default_factory=list)
    expire_tokens: bool = False
    retry_after: int = 1
    timeout_cap: float = 60.0
    truncate_fraction: float = 0.5

    @staticmethod
    def from_json(document: dict) -> "Plan":
        known = {"seed", "sequence", "probabilities", "match", "poison", "expire_tokens", "retry_after",
                 "timeout_cap", "truncate_fraction"}
        unknown = set(document) - known
        if unknown:
            raise PlanError(f"unknown plan keys {sorted(unknown)}; known: {sorted(known)}")
        match = document.get("match") or {}
        plan = Plan(
            seed=int(document.get("seed", 0)),
            sequence=[check_fault(str(item)) for item in document.get("sequence", [])],
            probabilities={check_fault(str(key)): float(value)
                           for key, value in (document.get("probabilities") or {}).items()},
            method=match.get("method"), path=match.get("path"), path_prefix=match.get("path_prefix"),
            poison=[str(item) for item in document.get("poison", [])],
            expire_tokens=bool(document.get("expire_tokens", False)),
            retry_after=int(document.get("retry_after", 1)),
            timeout_cap=float(document.get("timeout_cap", 60.0)),
            truncate_fraction=float(document.get("truncate_fraction", 0.5)),
        )
        plan.check()
        return plan

    def check(self) -> None:
        total = sum(self.probabilities.values())
        if any(value < 0 for value in self.probabilities.values()) or total > 1.0 + 1e-9:
            raise PlanError(f"fault probabilities must be non-negative and add up to at most 1 (got {total})")
        if not 0.0 <= self.truncate_fraction < 1.0:
            raise PlanError("truncate_fraction must be in [0, 1)")
        if self.timeout_cap <= 0 or self.retry_after < 0:
            raise PlanError("timeout_cap must be positive and retry_after non-negative")
        if any(not marker for marker in self.poison):
            raise PlanError("a poison marker must not be empty")

    def matches(self, method: str, path: str) -> bool:
        if self.method and method.upper() != self.method.upper():
            return False
        if self.path is not None and path.rstrip("/") != self.path.rstrip("/"):
            return False
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        return True


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path or "/"

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


class BadRequest(Exception):
    pass


class ClientGone(Exception):
    pass


def read_line(reader, limit: int) -> bytes:
    line = reader.readline(limit + 1)
    if len(line) > limit:
        raise BadRequest("header line too long")
    return line


def read_request(reader, connection: socket.socket) -> Request | None:
    """The next request on a connection, or None when the client closed it between requests."""
    try:
        line = read_line(reader, MAX_HEADER_BYTES)
    except (socket.timeout, ConnectionError):
        return None
    if not line:
        return None
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    size = 0
    while True:
        line = read_line(reader, MAX_HEADER_BYTES)
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise BadRequest("headers too large")
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ClientGone()
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise BadRequest("malformed header line")
        headers.append((name.strip(), value.strip()))
    request = Request(method, target, version, headers, b"")
    if (request.header("expect") or "").lower() == "100-continue":
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in (request.header("transfer-encoding") or "").lower():
        request.body = read_chunked(reader)
    else:
        length_text = request.header("content-length")
        length = int(length_text) if length_text and length_text.isdigit() else 0
        if length > MAX_BODY_BYTES:
            raise BadRequest("request body too large")
        request.body = reader.read(length) if length else b""
        if len(request.body) != length:
            raise ClientGone()
    return request


def read_chunked(reader) -> bytes:
    chunks = []
    total = 0
    while True:
        size_line = read_line(reader, 1024)
        if not size_line:
            raise ClientGone()
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while read_line(reader, MAX_HEADER_BYTES) not in (b"\r\n", b"\n", b""):
                pass  # trailers are dropped
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise BadRequest("request body too large")
        chunk = reader.read(size)
        reader.readline(3)
        if len(chunk) != size:
            raise ClientGone()
        chunks.append(chunk)


def response_bytes(status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool,
                   content_length: int | None = None, head: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status} {responses.get(status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


def operation_outcome(code: str, diagnostics: str, expression: str | None = None) -> bytes:
    issue: dict = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()


def poisoned_entry(body: bytes, marker: str) -> str:
    """Where the marker is: `Bundle.entry[i] (fullUrl)` for a Bundle, else the resource type."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "the request body"
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        for index, entry in enumerate(document.get("entry") or []):
            if marker in json.dumps(entry, ensure_ascii=False) or marker.encode() in json.dumps(entry).encode():
                full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
                return f"Bundle.entry[{index}]" + (f" ({full_url})" if full_url else "")
        return "Bundle"
    if isinstance(document, dict):
        return str(document.get("resourceType", "the request body"))
    return "the request body"


class Proxy:
    def __init__(self, listen_port: int, upstream: str, plan: Plan, max_connections: int):
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_NAMES or not parts.port:
            raise PlanError(f"--upstream must be http://127.0.0.1:PORT (loopback, plain HTTP), got {upstream!r}")
        self.upstream_host, self.upstream_port = LOOPBACK, parts.port
        self.plan = plan
        self.random = random.Random(plan.seed)
        self.lock = threading.Lock()
        self.counters: dict[str, int] = {key: 0 for key in (
            "connections", "rejected_connections", "requests", "matched", "forwarded", "forwarded_request_bytes",
            "forwarded_response_bytes", "upstream_errors", "bad_requests")}
        self.decisions: list[str] = []
        self.seen_tokens: set[str] = set()
        self.stopping = threading.Event()
        self.slots = threading.BoundedSemaphore(max_connections)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOOPBACK, listen_port))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]

    # -- bookkeeping --------------------------------------------------------------------------

    def count(self, key: str, amount: int = 1) -> None:
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + amount

    def stats(self) -> dict[str, int]:
        with self.lock:
            return dict(sorted(self.counters.items()))

    def decide(self, request: Request) -> str:
        """The fault for one request: sequence, then the token rule, poison, and a seeded draw."""
        if request.path.startswith("/__proxy/"):
            return "control"
        with self.lock:
            self.counters["requests"] += 1
            matched = self.plan.matches(request.method, request.path)
            planned = "forward"
            if matched:
                self.counters["matched"] += 1
                index = self.counters["matched"] - 1
                if index < len(self.plan.sequence):
                    planned = self.plan.sequence[index]
                elif self.plan.probabilities:
                    draw, cumulative = self.random.random(), 0.0
                    for name, probability in self.plan.probabilities.items():
                        cumulative += probability
                        if draw < cumulative:
                            planned = name
                            break
            if planned == "forward" and matched and self.plan.expire_tokens:
                authorization = request.header("authorization") or ""
                if authorization.lower().startswith("bearer ") and authorization not in self.seen_tokens:
                    self.seen_tokens.add(authorization)
                    planned = "expired-token"
            # A server that refuses some content never stores it: a poisoned request never reaches the
            # upstream, so faults that would forward it become the poison answer.
            if planned in UPSTREAM_FAULTS and any(marker.encode() in request.body for marker in self.plan.poison):
                planned = "poison"
            if matched:
                self.decisions.append(planned)
            if planned != "forward":
                self.counters[f"fault.{planned}"] = self.counters.get(f"fault.{planned}", 0) + 1
            return planned

    # -- serving ------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if not self.slots.acquire(blocking=False):
                self.count("rejected_connections")
                try:
                    connection.sendall(response_bytes(503, [("Content-Type", "text/plain")],
                                                      b"fault proxy: too many connections\n", False))
                finally:
                    connection.close()
                continue
            self.count("connections")
            threading.Thread(target=self.handle, args=(connection,), daemon=True).start()
        self.listener.close()

    def handle(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        reset = False
        try:
            connection.settimeout(IDLE_SECONDS)
            while not self.stopping.is_set():
                try:
                    request = read_request(reader, connection)
                except BadRequest as error:
                    self.count("bad_requests")
                    connection.sendall(response_bytes(400, [("Content-Type", "text/plain")],
                                                      f"fault proxy: {error}\n".encode(), False))
                    return
                if request is None:
                    return
                connection.settimeout(UPSTREAM_SECONDS)
                fault = self.decide(request)
                keep_alive = request.keep_alive
                if fault == "control":
                    self.answer_control(connection, request, keep_alive)
                elif fault == "forward":
                    status, headers, body = self.forward(request)
                    connection.sendall(response_bytes(status, headers, body, keep_alive,
                                                      head=request.method == "HEAD"))
                else:
                    keep_alive, reset = self.inject(fault, connection, request, keep_alive)
                if not keep_alive:
                    return
                connection.settimeout(IDLE_SECONDS)
        except (ClientGone, ConnectionError, socket.timeout, OSError):
            pass
        finally:
            reader.close()
            if reset:
                # Linger on with a zero timeout: close() sends RST instead of FIN.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
            self.slots.release()

    def answer_control(self, connection: socket.socket, request: Request, keep_alive: bool) -> None:
        if request.method == "GET" and request.path == "/__proxy/stats":
            body = json.dumps(self.stats()).encode()
        elif request.method == "GET" and request.path == "/__proxy/decisions":
            with self.lock:
                body = json.dumps(self.decisions).encode()
        else:
            connection.sendall(response_bytes(404, [("Content-Type", "text/plain")], b"not a proxy endpoint\n",
                                              keep_alive))
            return
        connection.sendall(response_bytes(200, [("Content-Type", "application/json")], body, keep_alive))

    def forward(self, request: Request):
        """Send the request upstream on a fresh connection and read the whole reply.

        A new connection per request keeps every forwarded request sent exactly once: re-sending on a
        kept-alive connection that the server had closed meanwhile could deliver a POST twice.
        """
        headers = {name: value for name, value in request.headers
                   if name.lower() not in HOP_BY_HOP and name.lower() != "host"}
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(request.body))
        headers["Connection"] = "close"
        upstream = HTTPConnection(self.upstream_host, self.upstream_port, timeout=UPSTREAM_SECONDS)
        try:
            upstream.request(request.method, request.target, body=request.body or None, headers=headers)
            reply = upstream.getresponse()
            body = reply.read()
        except (HTTPException, OSError) as error:
            self.count("upstream_errors")
            message = f"fault proxy: upstream {self.upstream_host}:{self.upstream_port} failed: {error}\n"
            return 502, [("Content-Type", "text/plain")], message.encode()
        finally:
            upstream.close()
        self.count("forwarded")
        self.count("forwarded_request_bytes", len(request.body))
        self.count("forwarded_response_bytes", len(body))
        reply_headers = [(name, value) for name, value in reply.getheaders() if name.lower() not in HOP_BY_HOP]
        return reply.status, reply_headers, body

    def inject(self, fault: str, connection: socket.socket, request: Request, keep_alive: bool):
        """Carry out one fault. Returns (keep the connection, close it with RST)."""
        plan = self.plan
        head = request.method == "HEAD"
        if fault.startswith("status:"):
            parts = fault.split(":")
            status = int(parts[1])
            headers = [("Content-Type", "application/fhir+json")]
            if len(parts) == 3:
                headers.append(("Retry-After", parts[2]))
            elif status == 429:
                headers.append(("Retry-After", str(plan.retry_after)))
            if status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="fault-proxy", error="invalid_token"'))
            code = {401: "login", 403: "forbidden", 429: "throttled", 503: "transient"}.get(status, "exception")
            body = operation_outcome(code, f"fault proxy: injected HTTP {status}")
            connection.sendall(response_bytes(status, headers, body, keep_alive, head=head))
            return keep_alive, False
        if fault == "expired-token":
            headers = [("Content-Type", "application/fhir+json"),
                       ("WWW-Authenticate", 'Bearer realm="fault-proxy", error="invalid_token", '
                                            'error_description="The access token expired"')]
            body = operation_outcome("expired", "Access token expired")
            connection.sendall(response_bytes(401, headers, body, keep_alive, head=head))
            return keep_alive, False
        if fault == "poison":
            marker = next(marker for marker in plan.poison if marker.encode() in request.body)
            where = poisoned_entry(request.body, marker)
            expression = where.split(" ")[0] if where.startswith("Bundle") else None
            body = operation_outcome("processing", f"{where} was rejected: it carries a poison marker "
                                                   f"the fault proxy was told to refuse", expression)
            connection.sendall(response_bytes(422, [("Content-Type", "application/fhir+json")], body, keep_alive,
                                              head=head))
            return keep_alive, False
        if fault == "garbage-200":
            connection.sendall(response_bytes(200, [("Content-Type", "text/html; charset=utf-8")], GARBAGE_200,
                                              keep_alive, head=head))
            return keep_alive, False
        if fault == "garbage-502":
            connection.sendall(response_bytes(502, [("Content-Type", "text/html"), ("Server", "gateway")],
                                              GARBAGE_502, keep_alive, head=head))
            return keep_alive, False
        if fault == "timeout":
            self.hold(connection, plan.timeout_cap)
            return False, False
        if fault == "reset":
            return False, True
        if fault == "reset-after-forward":
            self.forward(request)
            return False, True
        if fault == "truncate":
            status, headers, body = self.forward(request)
            if body:
                cut = min(len(body) - 1, int(len(body) * plan.truncate_fraction))
                data = response_bytes(status, headers, body[:cut], False, content_length=len(body))
            else:
                # Nothing to cut: promise a body and send none.
                data = response_bytes(status, headers, b"", False, content_length=64)
            connection.sendall(data)
            return False, False
        raise AssertionError(f"unhandled fault {fault}")

    def hold(self, connection: socket.socket, cap: float) -> None:
        """Never answer: wait until the client closes its end, the cap passes, or the proxy stops."""
        deadline = time.monotonic() + cap
        connection.setblocking(False)
        while not self.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], 0.2)
            if readable:
                try:
                    if not connection.recv(65536):
                        return
                except BlockingIOError:
                    continue
                except OSError:
                    return


def load_plan(args: argparse.Namespace) -> Plan:
    document: dict = {}
    if args.plan:
        with open(args.plan) as handle:
            document = json.load(handle)
    if args.plan_json:
        document.update(json.loads(args.plan_json))
    if args.seed is not None:
        document["seed"] = args.seed
    if args.sequence is not None:
        document["sequence"] = [item.strip() for item in args.sequence.split(",") if item.strip()]
    if args.probability:
        probabilities = dict(document.get("probabilities") or {})
        for item in args.probability:
            name, sep, value = item.rpartition("=")
            if not sep:
                raise PlanError(f"--probability wants FAULT=P, got {item!r}")
            probabilities[name] = float(value)
        document["probabilities"] = probabilities
    if args.poison:
        document["poison"] = list(document.get("poison", [])) + args.poison
    if args.expire_tokens:
        document["expire_tokens"] = True
    match = dict(document.get("match") or {})
    for key, value in (("method", args.match_method), ("path", args.match_path),
                       ("path_prefix", args.match_path_prefix)):
        if value is not None:
            match[key] = value
    if match:
        document["match"] = match
    for key in ("retry_after", "timeout_cap"):
        if getattr(args, key) is not None:
            document[key] = getattr(args, key)
    return Plan.from_json(document)


def write_atomically(path: str, text: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fault_proxy.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the real server")
    parser.add_argument("--listen", default=f"{LOOPBACK}:0", help="127.0.0.1:PORT (0: a free port)")
    parser.add_argument("--plan", help="fault plan JSON file")
    parser.add_argument("--plan-json", help="fault plan as JSON text (merged over --plan)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--sequence", help="comma-separated faults for the first matching requests")
    parser.add_argument("--probability", action="append", default=[], help="FAULT=P, repeatable")
    parser.add_argument("--poison", action="append", default=[], help="body marker answered with 422")
    parser.add_argument("--expire-tokens", action="store_true", help="401 once per distinct Bearer token")
    parser.add_argument("--match-method")
    parser.add_argument("--match-path")
    parser.add_argument("--match-path-prefix")
    parser.add_argument("--retry-after", type=int)
    parser.add_argument("--timeout-cap", type=float)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--stats-file")
    parser.add_argument("--ready-file")
    parser.add_argument("--stop-on-stdin-eof", action="store_true")
    args = parser.parse_args(argv)

    host, sep, port_text = args.listen.rpartition(":")
    if not sep or host not in LOOPBACK_NAMES or not port_text.isdigit():
        print(f"fault_proxy: refusing to listen on {args.listen!r}: only 127.0.0.1:PORT is allowed "
              f"(this proxy is a test tool and must not be reachable from the network)", file=sys.stderr)
        return 2
    if args.max_seconds <= 0 or args.max_connections <= 0:
        print("fault_proxy: --max-seconds and --max-connections must be positive", file=sys.stderr)
        return 2
    try:
        plan = load_plan(args)
        proxy = Proxy(int(port_text), args.upstream, plan, args.max_connections)
    except (PlanError, ValueError, OSError) as error:
        print(f"fault_proxy: {error}", file=sys.stderr)
        return 2

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.stop_on_stdin_eof:
        def watch_stdin() -> None:
            try:
                while os.read(0, 4096):
                    pass
            except OSError:
                pass
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    server = threading.Thread(target=proxy.serve_forever, daemon=True)
    server.start()
    line = f"ready http://{LOOPBACK}:{proxy.port}"
    if args.ready_file:
        write_atomically(args.ready_file, line + "\n")
    print(line, flush=True)
    stop.wait(args.max_seconds)
    proxy.stopping.set()
    server.join(5)
    if args.stats_file:
        write_atomically(args.stats_file, json.dumps(proxy.stats(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
