"""The passkey scenario: `vitalgate bluetooth pair --passkey-stdin` adopts a monitor that requires an
authenticated (MITM) pairing, through the real kernel SMP and bluetoothd, with the hub's agent asked for the
passkey (RequestPasskey) the monitor displays.

1. A test-only profile tree (the standard blood-pressure profile with "pairing": "passkey", matched by
   service 1810 and the name VG-BPK*) is written at run time and passed with --profiles.
2. The pair command prompts; the scenario types the passkey the monitor reports on its control socket. The
   command exits 0, the monitor saw one authenticated pairing, BlueZ holds it Paired, Bonded and Trusted.
3. vitalgated with that profile tree subscribes over the authenticated link (the monitor refuses the CCCD
   write on any other) and the monitor's stored record reaches the Outbox (`vitalgate queue --json`).
4. `vitalgate bluetooth forget`, then pairing again with a wrong passkey: the command exits non-zero saying
   the pairing failed, and the device stays unpaired and untrusted.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from vmlib import Peripherals, Report, bluetoothctl, device_info, end_process, log, wait_for

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path("/vm/bin")
ADDRESS = "F3:0B:50:00:00:21"
NAME = "VG-BPK"
PROFILE_ID = "test/bp-passkey"
RECORD = {"systolic": 124, "diastolic": 81, "map": 95, "pulse": 68, "user": 0xFF, "status": 0, "minutesAgo": 10}


def write_profiles(root: Path) -> Path:
    """The shipped blood-pressure profile, made to require passkey pairing and to claim only this monitor."""
    profile = json.loads((REPO / "DeviceProfiles/bluetooth-sig/blood-pressure.json").read_text())
    profile.pop("$schema", None)
    profile["id"] = PROFILE_ID
    profile["model"] = "Passkey test monitor (VM)"
    profile["match"] = {"bluetooth": {"services": ["1810"], "names": [f"{NAME}*"]}}
    profile["transport"]["ble"]["pairing"] = "passkey"
    folder = root / "test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bp-passkey.json").write_text(json.dumps(profile, indent=2))
    return root


class PairCommand:
    """`vitalgate bluetooth pair ADDRESS --passkey-stdin` with its prompt answered like a person would."""

    PROMPT = "Type the passkey"

    def __init__(self, env: dict, profiles: Path, cli_log) -> None:
        self.cli_log = cli_log
        self.output = bytearray()
        self.lock = threading.Lock()
        arguments = ["bluetooth", "pair", ADDRESS, "--passkey-stdin", "--adapter", "hci0", "--timeout", "120",
                     "--profiles", str(profiles)]
        self.arguments = arguments
        self.process = subprocess.Popen([str(BIN / "vitalgate"), *arguments], env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while chunk := os.read(self.process.stdout.fileno(), 4096):
            with self.lock:
                self.output += chunk

    def text(self) -> str:
        with self.lock:
            return self.output.decode(errors="replace")

    def answer(self, passkey_for) -> str:
        """Waits for the prompt, then types what `passkey_for()` gives (it waits for the monitor's display)."""
        wait_for("the pair command's passkey prompt",
                 lambda: self.PROMPT in self.text() or self.process.poll() is not None, 150)
        if self.process.poll() is not None:
            raise RuntimeError(f"vitalgate bluetooth pair exited {self.process.returncode} before prompting: {self.text()[-800:]}")
        typed = passkey_for()
        self.process.stdin.write(typed.encode() + b"\n")
        self.process.stdin.flush()
        self.process.stdin.close()
        return typed

    def finish(self, timeout: float = 150) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = end_process(self.process)
        self.reader.join(5)
        self.cli_log.write(f"$ vitalgate {' '.join(self.arguments)}\n[exit {code}]\n{self.text()}\n")
        self.cli_log.flush()
        return code


def run(results: Path, request: dict, report: Report) -> None:
    workdir = Path("/tmp/passkey")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LD_LIBRARY_PATH": str(BIN / "lib")}
    profiles = write_profiles(Path("/tmp/passkey-profiles"))
    devices = {"bpk": {"name": NAME, "address": ADDRESS, "passkey": True, "clockOffsetSeconds": 0, "records": [RECORD]}}
    peripherals = Peripherals(workdir, devices, verbose=request.get("verboseBumble", False), name="passkey-peripherals",
                              log_dir=results)
    cli_log = open(results / "passkey-cli.log", "a")
    daemon = None
    try:
        wait_for("bluetoothd to power hci0", lambda: "Powered: yes" in bluetoothctl("show"), 90)
        report.phase("peripherals started")

        def newest_passkey(after: int):
            def shown():
                passkeys = peripherals.status("bpk")["passkeys"]
                return passkeys[after] if len(passkeys) > after else None
            return wait_for("the monitor to display a passkey", shown, 60)

        # 1. The right passkey.
        before = len(peripherals.status("bpk")["passkeys"])
        pair = PairCommand(env, profiles, cli_log)
        typed = pair.answer(lambda: newest_passkey(before))
        code = pair.finish()
        report.check("vitalgate bluetooth pair --passkey-stdin with the displayed passkey exits 0", code == 0,
                     pair.text()[-1500:])
        status = peripherals.status("bpk")
        report.check("the hub asked for the passkey the monitor displayed (one passkey shown)",
                     len(status["passkeys"]) == before + 1 and status["passkeys"][-1] == typed,
                     {"shown": len(status["passkeys"]) - before})
        report.check("the monitor saw one authenticated (MITM) pairing and no failure",
                     status["pairings"] == 1 and status["authenticatedPairings"] == 1 and status["pairingFailures"] == 0,
                     {k: status[k] for k in ("pairings", "authenticatedPairings", "pairingFailures")})
        info = device_info(ADDRESS)
        report.check("BlueZ holds the monitor Paired, Bonded and Trusted",
                     all(info.get(key) == "yes" for key in ("Paired", "Bonded", "Trusted")), info)
        report.phase("passkey pairing")

        # 2. The daemon reads the record over the authenticated link.
        state = workdir / "state"
        config = workdir / "config.json"
        config.write_text(json.dumps({
            "stateDirectory": str(state), "owner": "cccd:001085012345",
            # No server: the record must reach the Outbox and wait there.
            "server": {"baseURL": "http://127.0.0.1:9/fhir", "retry": {"initialMilliseconds": 200, "maximumSeconds": 2}},
            "gateway": {"ethernetAddress": "02:00:00:00:00:01"},
            "devices": {"discover": False, "profiles": str(profiles)},
            "bluetooth": {"enabled": True, "adapter": "hci0"},
        }, indent=2))
        daemon_log = workdir / "vitalgated.log"
        daemon = subprocess.Popen([str(BIN / "vitalgated"), "--config", str(config)], env=env,
                                  stdout=open(daemon_log, "a"), stderr=subprocess.STDOUT)
        try:
            wait_for("the monitor's record to be confirmed (indication)",
                     lambda: len(peripherals.status("bpk")["delivered"]) >= 1 or daemon.poll() is not None, 150, 1.0)

            def queued():
                result = subprocess.run([str(BIN / "vitalgate"), "queue", "--json", "--config", str(config)], env=env,
                                        capture_output=True, text=True, timeout=60)
                try:
                    counts = json.loads(result.stdout)["counts"] if result.returncode == 0 else {}
                except (json.JSONDecodeError, KeyError):
                    counts = {}
                return counts if sum(v for v in counts.values() if isinstance(v, int)) >= 1 else None
            try:
                counts = wait_for("the record in the Outbox", queued, 60, 1.0)
            except TimeoutError:
                counts = None
            status = peripherals.status("bpk")
            report.check("vitalgated subscribed over the authenticated link and the record reached the Outbox",
                         len(status["delivered"]) == 1 and counts is not None and not counts.get("dead"),
                         {"counts": counts, "delivered": len(status["delivered"]),
                          "rejected": [e for e in status["events"] if e["event"] == "cccd-rejected"]})
            report.check("no second pairing for the daemon's connection", status["pairings"] == 1,
                         {k: status[k] for k in ("pairings", "encryptions")})
        finally:
            code = end_process(daemon, 60)
            daemon = None
            (results / "passkey-vitalgated.log").write_text(daemon_log.read_text() if daemon_log.exists() else "")
        report.check("vitalgated stops cleanly", code == 0, code)
        report.phase("daemon over the authenticated link")

        # 3. Forget it, then a wrong passkey.
        forgotten = subprocess.run([str(BIN / "vitalgate"), "bluetooth", "forget", ADDRESS, "--adapter", "hci0"],
                                   env=env, capture_output=True, text=True, timeout=60)
        cli_log.write(f"$ vitalgate bluetooth forget {ADDRESS}\n[exit {forgotten.returncode}]\n{forgotten.stdout}{forgotten.stderr}\n")
        report.check("vitalgate bluetooth forget exits 0", forgotten.returncode == 0, forgotten.stdout + forgotten.stderr)
        failures = peripherals.status("bpk")["pairingFailures"]
        before = len(peripherals.status("bpk")["passkeys"])
        pair = PairCommand(env, profiles, cli_log)
        pair.answer(lambda: f"{(int(newest_passkey(before)) + 1) % 1_000_000:06d}")
        code = pair.finish()
        output = pair.text()
        report.check("a wrong passkey makes the pair command exit non-zero saying the pairing failed",
                     code not in (0, None) and "pairing failed" in output, {"exit": code, "output": output[-1500:]})
        status = peripherals.status("bpk")
        report.check("the monitor saw the pairing fail", status["pairingFailures"] > failures,
                     {k: status[k] for k in ("pairings", "authenticatedPairings", "pairingFailures")})
        time.sleep(1)
        info = device_info(ADDRESS)
        report.check("after the wrong passkey the device is neither paired nor trusted",
                     info.get("Paired") != "yes" and info.get("Trusted") != "yes", info)
        report.phase("wrong passkey")
    finally:
        if daemon:
            end_process(daemon, 60)
        bluetoothctl("remove", ADDRESS)
        cli_log.close()
        peripherals.stop()
    log("passkey scenario done")
