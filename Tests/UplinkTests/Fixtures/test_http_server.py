#!/usr/bin/env python3
"""A scripted HTTP(S) peer for the Uplink's HTTP client and authenticator tests (stdlib only).

Binds 127.0.0.1 on a free port and, once it accepts connections, writes "ready http(s)://127.0.0.1:<port>"
to --ready-file (atomically, the line VitalGateTestKit's BackgroundProcess waits for) and to stdout. Exits by
itself after --lifetime seconds, or when stdin reaches EOF with --stop-on-stdin-eof (the test process died);
tests stop it earlier by PID (SIGTERM).

Routes:
  /echo                            200, JSON of the request (method, path, headers, body)
  /status/<code>?header=Name:Value that status, with the given headers (repeatable)
  /bytes/<n>                       200 with n bytes
  /slow/<seconds>                  waits (at most 30 s), then 200
  /stats                           JSON counters: connections, token requests, issued tokens, last form
  .../.well-known/smart-configuration SMART discovery naming this server's /token (404 with --no-discovery)
  /token                           OAuth client_credentials: client_secret_basic (--client-id/--client-secret)
                                   or private_key_jwt (--client-id/--client-public-key/--client-alg),
                                   assertion signatures checked with the openssl CLI
  /fhir/<anything>                 200 with a valid issued bearer token, else 401 + WWW-Authenticate
"""
import argparse
import base64
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der_integer(raw):
    raw = raw.lstrip(b"\x00") or b"\x00"
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return b"\x02" + bytes([len(raw)]) + raw


def ecdsa_raw_to_der(signature):
    half = len(signature) // 2
    body = der_integer(signature[:half]) + der_integer(signature[half:])
    return b"\x30" + bytes([len(body)]) + body


class State:
    def __init__(self, options):
        self.options = options
        self.lock = threading.Lock()
        self.connections = 0
        self.token_requests = 0
        self.issued = {}  # token -> expiry (epoch seconds)
        self.seen_jti = set()
        self.last_form = {}
        self.last_assertion = None

    def snapshot(self):
        with self.lock:
            return {
                "connections": self.connections,
                "token_requests": self.token_requests,
                "tokens_issued": len(self.issued),
                "last_form": self.last_form,
                "last_assertion": self.last_assertion,
            }


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, state, context):
        self.state = state
        self.context = context
        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self):
        connection, address = self.socket.accept()
        with self.state.lock:
            self.state.connections += 1
        if self.context is not None:
            # The handshake happens on the handler's thread, so a failing client does not stall accept.
            connection = self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def handle_error(self, request, client_address):
        kind, value = sys.exc_info()[:2]
        print(f"connection from {client_address[0]} ended: {kind.__name__}: {value}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable

    def setup(self):
        self.request.settimeout(30)
        if self.server.context is not None:
            self.request.do_handshake()
        super().setup()

    def log_message(self, format, *args):
        pass

    # Responses

    def respond(self, status, body=b"", headers=(), content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def oauth_error(self, status, code, description):
        self.respond(status, {"error": code, "error_description": description}, headers=[("Cache-Control", "no-store")])

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # Dispatch

    def do_GET(self):
        self.route(b"")

    def do_HEAD(self):
        self.route(b"")

    def do_POST(self):
        self.route(self.read_body())

    def do_PUT(self):
        self.route(self.read_body())

    def do_DELETE(self):
        self.route(self.read_body())

    def route(self, body):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        parts = [part for part in url.path.split("/") if part]
        state = self.server.state
        if url.path == "/echo":
            self.respond(200, {
                "method": self.command,
                "path": self.path,
                "headers": [[name.lower(), value] for name, value in self.headers.items()],
                "body": body.decode("latin-1"),
            })
        elif len(parts) == 2 and parts[0] == "status":
            headers = [tuple(item.split(":", 1)) for item in query.get("header", [])]
            self.respond(int(parts[1]), {"status": int(parts[1])}, headers=headers)
        elif len(parts) == 2 and parts[0] == "bytes":
            self.respond(200, b"x" * int(parts[1]), content_type="application/octet-stream")
        elif len(parts) == 2 and parts[0] == "slow":
            time.sleep(min(float(parts[1]), 30))
            self.respond(200, {"slept": float(parts[1])})
        elif url.path == "/stats":
            self.respond(200, state.snapshot())
        elif url.path.endswith("/.well-known/smart-configuration"):
            if state.options.no_discovery:
                self.respond(404, {"error": "not found"})
            else:
                scheme = "https" if self.server.context is not None else "http"
                self.respond(200, {
                    "token_endpoint": f"{scheme}://127.0.0.1:{self.server.server_address[1]}/token",
                    "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
                    "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
                    "capabilities": ["client-confidential-asymmetric"],
                })
        elif url.path == "/token" and self.command == "POST":
            self.token(body)
        elif parts and parts[0] == "fhir":
            self.protected()
        else:
            self.respond(404, {"error": "no such route"})

    # OAuth token endpoint

    def token(self, body):
        state = self.server.state
        options = state.options
        form = {key: values[0] for key, values in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
        with state.lock:
            state.token_requests += 1
            state.last_form = {key: value for key, value in form.items() if key != "client_assertion"}
        if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return self.oauth_error(400, "invalid_request", "content type must be application/x-www-form-urlencoded")
        if options.token_error:
            return self.oauth_error(options.token_error_status, options.token_error, "scripted refusal")
        if options.token_status:
            return self.respond(options.token_status, {"status": options.token_status},
                                headers=[("Retry-After", "7")] if options.token_status in (429, 503) else [])
        if form.get("grant_type") != "client_credentials":
            return self.oauth_error(400, "unsupported_grant_type", "only client_credentials")
        if options.client_secret is not None:
            problem = self.check_basic()
        else:
            problem = self.check_assertion(form)
        if problem:
            return self.oauth_error(401, "invalid_client", problem)
        token = "tok-" + secrets.token_hex(12)
        with state.lock:
            state.issued[token] = time.time() + options.token_lifetime
        self.respond(200, {"access_token": token, "token_type": "Bearer", "expires_in": options.token_lifetime,
                           "scope": form.get("scope", "")}, headers=[("Cache-Control", "no-store")])

    def check_basic(self):
        options = self.server.state.options
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return "no HTTP Basic client authentication"
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except Exception:
            return "malformed Basic credentials"
        client_id, _, secret = decoded.partition(":")
        if urllib.parse.unquote_plus(client_id) != options.client_id or urllib.parse.unquote_plus(secret) != options.client_secret:
            return "wrong client id or secret"
        return None

    def check_assertion(self, form):
        state = self.server.state
        options = state.options
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return "missing or wrong client_assertion_type"
        pieces = form.get("client_assertion", "").split(".")
        if len(pieces) != 3:
            return "client_assertion is not a compact JWS"
        try:
            header = json.loads(b64url_decode(pieces[0]))
            claims = json.loads(b64url_decode(pieces[1]))
            signature = b64url_decode(pieces[2])
        except Exception:
            return "client_assertion does not decode"
        with state.lock:
            state.last_assertion = {"header": header, "claims": claims, "signature_length": len(signature)}
        if header.get("alg") != options.client_alg or header.get("typ") != "JWT":
            return "unexpected alg or typ"
        if options.client_kid is not None and header.get("kid") != options.client_kid:
            return "unknown kid"
        if options.client_alg == "ES384":
            if len(signature) != 96:
                return "ES384 signature is not 96 bytes"
            signature = ecdsa_raw_to_der(signature)
        if not verify_with_openssl(options.client_public_key, (pieces[0] + "." + pieces[1]).encode(), signature):
            return "signature does not verify"
        scheme = "https" if self.server.context is not None else "http"
        token_url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/token"
        if claims.get("iss") != options.client_id or claims.get("sub") != options.client_id:
            return "iss/sub is not the client id"
        if claims.get("aud") != token_url:
            return "aud is not the token URL"
        now = time.time()
        if not isinstance(claims.get("exp"), int) or not (now - 60 < claims["exp"] <= now + 300 + 60):
            return "exp missing or more than five minutes ahead"
        jti = claims.get("jti")
        with state.lock:
            if not isinstance(jti, str) or jti in state.seen_jti:
                return "jti missing or replayed"
            state.seen_jti.add(jti)
        return None

    # A protected FHIR resource

    def protected(self):
        state = self.server.state
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else None
        with state.lock:
            expiry = state.issued.get(token)
        if token is not None and state.options.accept_token == token:
            expiry = time.time() + 60
        if expiry is None or expiry < time.time():
            return self.respond(401, {"resourceType": "OperationOutcome"},
                                headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
        self.respond(200, {"resourceType": "CapabilityStatement"})


def verify_with_openssl(public_key, message, signature):
    with tempfile.TemporaryDirectory() as directory:
        message_path = os.path.join(directory, "message")
        signature_path = os.path.join(directory, "signature")
        with open(message_path, "wb") as file:
            file.write(message)
        with open(signature_path, "wb") as file:
            file.write(signature)
        result = subprocess.run(["openssl", "dgst", "-sha384", "-verify", public_key, "-signature", signature_path,
                                 message_path], capture_output=True, timeout=30)
        return result.returncode == 0


def exit_at_stdin_eof():
    """The launcher holds our stdin open while it lives; EOF means it is gone, so go too."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifetime", type=float, default=120, help="exit after this many seconds")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca", help="require client certificates issued by this CA")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--client-public-key")
    parser.add_argument("--client-alg", default="ES384")
    parser.add_argument("--client-kid")
    parser.add_argument("--token-lifetime", type=int, default=300)
    parser.add_argument("--token-error", help="refuse every token request with this OAuth error code")
    parser.add_argument("--token-error-status", type=int, default=400)
    parser.add_argument("--token-status", type=int, help="answer token requests with this bare status")
    parser.add_argument("--accept-token", help="a static bearer token /fhir accepts")
    parser.add_argument("--no-discovery", action="store_true")
    parser.add_argument("--ready-file", help="write the ready line here once listening")
    parser.add_argument("--stop-on-stdin-eof", action="store_true", help="exit when stdin closes")
    options = parser.parse_args()
    # A launcher's threads may block signals, and the mask survives exec: unblock the ones that stop us.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    context = None
    if options.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(options.tls_cert, options.tls_key)
        if options.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(options.client_ca)

    server = Server(State(options), context)
    # Bounded lifetime: a test that forgets to stop the server does not leave it running.
    timer = threading.Timer(options.lifetime, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    if options.stop_on_stdin_eof:
        threading.Thread(target=exit_at_stdin_eof, daemon=True).start()
    scheme = "https" if context is not None else "http"
    line = f"ready {scheme}://127.0.0.1:{server.server_address[1]}"
    if options.ready_file:
        # Write then rename, so the launcher never reads half a line.
        partial = options.ready_file + ".partial"
        with open(partial, "w") as file:
            file.write(line + "\n")
        os.replace(partial, options.ready_file)
    print(line, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
