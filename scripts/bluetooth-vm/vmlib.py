"""Helpers for the scenarios that run inside the Bluetooth test VM: the peripherals process and its control
socket, a long-lived bluetoothctl session (it is also the pairing agent for the smoke scenario), waits on
wall-clock deadlines, and the record of checks and timings that goes back to the host.

Stdlib only; runs under the VM's /opt/vm-venv Python.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PYTHON = "/opt/vm-venv/bin/python"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x01|\x02")


def log(message: str) -> None:
    print(f"[{time.monotonic():8.1f}] {message}", flush=True)


def wait_for(what: str, predicate, timeout: float, interval: float = 0.25):
    """Polls `predicate` until it returns something truthy; wall-clock bound (emulation is slow and uneven)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def end_process(process: subprocess.Popen, timeout: float = 15) -> int | None:
    """SIGTERM by PID, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Report:
    """Checks and timings of one scenario, written to the results share as they happen (a VM killed by the
    host's time limit still leaves what it had)."""

    def __init__(self, results: Path, name: str, expects_observations: bool = False) -> None:
        self.results = results
        self.entry = {"name": name, "ok": None, "checks": [], "timings": {}, "expectsObservations": expects_observations}
        self.started = time.monotonic()
        self.phase_started = self.started

    def check(self, name: str, passed: bool, detail=None) -> bool:
        self.entry["checks"].append({"name": name, "ok": bool(passed), **({"detail": detail} if detail is not None else {})})
        log(f"{'PASS' if passed else 'FAIL'} {name}" + (f": {detail}" if detail is not None and not passed else ""))
        return bool(passed)

    def phase(self, name: str) -> None:
        now = time.monotonic()
        self.entry["timings"][name] = round(now - self.phase_started, 1)
        self.phase_started = now

    def finish(self, error: str | None = None) -> dict:
        self.entry["timings"]["total"] = round(time.monotonic() - self.started, 1)
        if error:
            self.entry["error"] = error
        self.entry["ok"] = not error and all(c["ok"] for c in self.entry["checks"]) and bool(self.entry["checks"])
        return self.entry


class Peripherals:
    """peripherals.py as a child process, driven through its control socket."""

    def __init__(self, workdir: Path, config: dict, verbose: bool = False, name: str = "peripherals",
                 log_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.socket_path = str(workdir / f"{name}.sock")
        ready = workdir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        config_path = workdir / f"{name}.json"
        config_path.write_text(json.dumps(config, indent=2))
        self.log_path = (log_dir or workdir) / f"{name}.log"
        command = [VENV_PYTHON, str(HERE / "peripherals.py"), "--config", str(config_path), "--control",
                   self.socket_path, "--ready-file", str(ready)]
        if verbose:
            command.append("--verbose")
        self.process = subprocess.Popen(command, stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        wait_for("the peripherals to start (Bumble's import takes long under emulation)",
                 lambda: ready.exists() or self.process.poll() is not None, 180)
        if self.process.poll() is not None:
            raise RuntimeError(f"peripherals.py exited with {self.process.returncode}; see {self.log_path}")
        self.addresses = json.loads(ready.read_text())
        self.connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.connection.settimeout(60)
        self.connection.connect(self.socket_path)
        self.reader = self.connection.makefile("rb")

    def request(self, op: str, **fields) -> dict:
        self.connection.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
        answer = json.loads(self.reader.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"peripherals: {op} failed: {answer.get('error')}")
        return answer

    def status(self, device: str) -> dict:
        return self.request("status")["devices"][device]

    def stop(self) -> None:
        try:
            self.connection.close()
        finally:
            end_process(self.process)


class BluetoothCtl:
    """One long-lived `bluetoothctl` fed through a pipe; its output is collected by a reader thread with the
    colour codes and prompts removed. It registers the NoInputNoOutput agent the kernel's Just Works
    pairing needs (reference/bluetooth-vm-testing.md, trap 6)."""

    PROMPT = re.compile(r"^(\[[^\]]*\][#>] ?)+")

    def __init__(self, log_path: Path) -> None:
        self.log = open(log_path, "a")
        self.process = subprocess.Popen(["bluetoothctl"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                text = ANSI.sub("", raw.decode(errors="replace")).replace("\r", "")
                text = self.PROMPT.sub("", text)
                self.log.write(text + "\n")
                self.log.flush()
                with self.lock:
                    self.lines.append(text)

    def send(self, command: str) -> int:
        """Sends one command; returns the output line index it starts at (for `wait_line`)."""
        with self.lock:
            mark = len(self.lines)
        self.log.write(f">>> {command}\n")
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()
        return mark

    def snapshot(self, start: int = 0) -> list[str]:
        with self.lock:
            return self.lines[start:]

    def wait_line(self, pattern: str, start: int, timeout: float) -> re.Match:
        expression = re.compile(pattern)

        def found():
            for line in self.snapshot(start):
                match = expression.search(line)
                if match:
                    return match
            return None
        return wait_for(f"bluetoothctl to print /{pattern}/", found, timeout)

    def values(self, path_suffix: str, start: int = 0) -> list[bytes]:
        """Every `[CHG] Attribute …/PATH Value:` hex dump printed since `start`, as bytes."""
        values: list[bytes] = []
        current: bytearray | None = None
        for line in self.snapshot(start):
            if "[CHG] Attribute" in line and "Value:" in line:
                if current is not None:
                    values.append(bytes(current))
                current = bytearray() if line.split("Value:")[0].rstrip().endswith(path_suffix) else None
                continue
            if current is not None:
                match = re.match(r"^\s+((?:[0-9a-f]{2} )+)", line)
                if match:
                    current.extend(bytes.fromhex(match.group(1)))
                else:
                    values.append(bytes(current))
                    current = None
        if current is not None:
            values.append(bytes(current))
        return values

    def close(self) -> None:
        try:
            self.process.stdin.write(b"quit\n")
            self.process.stdin.flush()
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        end_process(self.process, 5)
        self.log.close()


def bluetoothctl(*arguments: str, timeout: float = 30) -> str:
    """A one-shot bluetoothctl command; its output without colour codes."""
    result = subprocess.run(["bluetoothctl", *arguments], capture_output=True, text=True, timeout=timeout)
    return ANSI.sub("", result.stdout)


def device_info(address: str) -> dict[str, str]:
    info = {}
    for line in bluetoothctl("info", address).splitlines():
        key, sep, value = line.strip().partition(": ")
        if sep:
            info.setdefault(key, value)
    return info
