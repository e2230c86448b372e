"""The pipeline scenario: vitalgated reads the virtual devices through BlueZ and uploads to sekmet-fhir, all
inside the VM, and every step is checked against what the devices sent and what the server holds.

1. `vitalgate bluetooth pair` adopts the blood-pressure monitor (Just Works, bonded) and the heart-rate
   sensor (no pairing); `vitalgate bluetooth list --json` shows both.
2. vitalgated downloads the monitor's stored records (indications over the encrypted link). The household
   binds the monitor's user 1 to its one member: those records reach the member's record on the server with
   their values and times; the one of user 2 (bound to no one) and the one of user 0xFF ("unknown user") are
   held unassigned, never guessed.
3. The heart-rate sensor notifies at 1 Hz for about 30 s; with bluetooth.heartRate.windowSeconds 10 the
   server receives 10-second summaries whose values lie within the rates the sensor sent.
4. The monitor's clock is wrong by hours (set while the daemon is stopped, so this step does not depend on
   the next): the record it stores carries its wrong time; the server gets a Coincident Timestamp
   Observation and the effective time corrected onto the hub's timeline, and the monitor receives the hub's
   Current Time write.
5. The monitor disappears and returns with one more record: the running daemon reconnects by itself and
   uploads it, and no earlier reading is duplicated.
6. vitalgated and bluetoothd restart: the monitor is read again over the stored bond (an encrypted link,
   no second pairing).
7. `vitalgate queue --json` agrees with the server: nothing pending or dead, the user-2 and unknown-user
   records unassigned.
Every Observation on the server is copied to RESULTS/observations for the host's validator.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from vmlib import Peripherals, Report, bluetoothctl, device_info, end_process, log, wait_for

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path("/vm/bin")
PATIENT_SYSTEM = "http://fhir.hl7.org.vn/core/sid/cccd"
PATIENT_VALUE = "001085012345"
HUB_MAC = "02:00:00:00:00:01"
BP_ADDRESS = "F1:0B:50:00:00:11"
HR_ADDRESS = "F2:0B:50:00:00:12"
UNKNOWN_USER = 0xFF
OWNER_SLOT = 1  # the household binds the monitor's user 1 to its one member
HR_RATES = [72, 74, 77, 80, 83, 85, 84, 81, 78, 75]
WRONG_CLOCK_OFFSET = -(3 * 3600 + 17 * 60)  # the monitor's clock 3 h 17 min slow
LOINC_BLOOD_PRESSURE = "85354-9"
LOINC_HEART_RATE = "8867-4"
MDC_TIME_ABS = "67975"

INITIAL_RECORDS = [
    {"systolic": 121, "diastolic": 79, "map": 93, "pulse": 64, "user": OWNER_SLOT, "status": 0, "minutesAgo": 180},
    # irregular pulse
    {"systolic": 135, "diastolic": 88, "map": 104, "pulse": 91, "user": OWNER_SLOT, "status": 0x0004, "minutesAgo": 60},
    # user 2 of a two-user cuff, bound to no one: held unassigned
    {"systolic": 118, "diastolic": 76, "map": 90, "pulse": 70, "user": 2, "status": 0x0001, "minutesAgo": 20},
    # the monitor did not know who measured: held unassigned, never given to the owner
    {"systolic": 109, "diastolic": 71, "map": 84, "pulse": 62, "user": UNKNOWN_USER, "status": 0, "minutesAgo": 15},
]
RETURN_RECORD = {"systolic": 127, "diastolic": 83, "map": 98, "pulse": 77, "user": OWNER_SLOT, "status": 0, "minutesAgo": 1}
WRONG_CLOCK_RECORD = {"systolic": 142, "diastolic": 91, "map": 108, "pulse": 83, "user": OWNER_SLOT, "status": 0, "minutesAgo": 5}
AFTER_RESTART_RECORD = {"systolic": 116, "diastolic": 74, "map": 88, "pulse": 66, "user": OWNER_SLOT, "status": 0, "minutesAgo": 2}


class Server:
    """sekmet-fhir through scripts/fhir-server/serve, with the VM's Python (sekmet is in /opt/vm-venv)."""

    request_timeout = 120

    def __init__(self, workdir: Path) -> None:
        data = workdir / "fhir"
        data.mkdir(parents=True, exist_ok=True)
        self.ready = workdir / "fhir-ready"
        self.log_path = workdir / "fhir.log"
        self.process = subprocess.Popen(
            ["/opt/vm-venv/bin/python", str(REPO / "scripts/fhir-server/serve"), "--data", str(data), "--port", "0",
             "--ready-file", str(self.ready), "--max-seconds", "1800"],
            stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        self.base = ""

    def wait_ready(self) -> None:
        wait_for("the FHIR server (sekmet's import takes long under emulation)",
                 lambda: self.process.poll() is not None or (self.ready.exists() and self.ready.read_text().strip()), 300)
        if self.process.poll() is not None:
            raise RuntimeError(f"the FHIR server exited with {self.process.returncode}; see {self.log_path}")
        self.base = self.ready.read_text().split()[-1].rstrip("/")

    def request(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/fhir+json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def create_patient(self, value: str = PATIENT_VALUE) -> str:
        query = urllib.parse.quote(f"{PATIENT_SYSTEM}|{value}", safe="")
        status, body = self.request("POST", "/Patient", {"resourceType": "Patient", "identifier": [
            {"system": PATIENT_SYSTEM, "value": value}]}, {"If-None-Exist": f"identifier={query}"})
        if status not in (200, 201):
            raise RuntimeError(f"creating the patient failed: HTTP {status} {body}")
        status, found = self.request("GET", f"/Patient?identifier={query}")
        return found["entry"][0]["resource"]["id"]

    def search_all(self, path: str) -> list[dict]:
        resources: list[dict] = []
        status, bundle = self.request("GET", path)
        while True:
            if status != 200:
                raise RuntimeError(f"search {path} failed: HTTP {status}")
            resources += [entry["resource"] for entry in bundle.get("entry", [])]
            following = [link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"]
            if not following:
                return resources
            url = following[0]
            status, bundle = self.request("GET", url[len(self.base):] if url.startswith(self.base) else url)

    def observations(self) -> list[dict]:
        return self.search_all("/Observation?_count=500")

    def stop(self) -> None:
        end_process(self.process)


class Daemon:
    def __init__(self, workdir: Path, config: Path, env: dict) -> None:
        self.config = config
        self.env = env
        self.log_path = workdir / "vitalgated.log"
        self.socket = json.loads(config.read_text())["stateDirectory"] + "/ingest.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([str(BIN / "vitalgated"), "--config", str(self.config)], env=self.env,
                                        stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        wait_for("vitalgated to be ready (its ingest socket)",
                 lambda: self.process.poll() is not None or os.path.exists(self.socket), 120)
        if self.process.poll() is not None:
            raise RuntimeError(f"vitalgated exited with {self.process.returncode}; see {self.log_path}")

    def stop(self) -> int | None:
        return end_process(self.process, 60) if self.process else None


def components(observation: dict) -> dict[str, float]:
    """LOINC code -> value of the components (blood pressure) or the value itself."""
    values = {}
    for component in observation.get("component", []):
        for coding in component.get("code", {}).get("coding", []):
            if coding.get("system") == "http://loinc.org" and "valueQuantity" in component:
                values[coding["code"]] = component["valueQuantity"]["value"]
    return values


def has_code(observation: dict, code: str) -> bool:
    return any(coding.get("code") == code for coding in observation.get("code", {}).get("coding", []))


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def hub_time(device_time: str) -> datetime.datetime:
    """A device time (local, no offset) as an aware time on the VM's clock (UTC, like the hub's offset here)."""
    return datetime.datetime.fromisoformat(device_time).replace(tzinfo=datetime.timezone.utc)


def run(results: Path, request: dict, report: Report) -> None:
    workdir = Path("/tmp/pipeline")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LD_LIBRARY_PATH": str(BIN / "lib"), "VITALGATE_PROFILES": str(REPO / "DeviceProfiles")}
    server = Server(workdir)  # starts now; its import runs while the peripherals start
    devices = {
        "bp": {"name": "VG-BPM", "address": BP_ADDRESS, "clockOffsetSeconds": 0, "records": INITIAL_RECORDS},
        "hr": {"name": "VG-HRS", "address": HR_ADDRESS, "heartRates": HR_RATES},
    }
    peripherals = Peripherals(workdir, devices, verbose=request.get("verboseBumble", False), name="pipeline-peripherals",
                              log_dir=results)
    daemon = None
    try:
        # A new peripherals process is a new hci0 for the kernel: bluetoothd must have powered it.
        wait_for("bluetoothd to power hci0", lambda: "Powered: yes" in bluetoothctl("show"), 90)
        server.wait_ready()
        patient_id = server.create_patient()
        report.phase("server and peripherals started")
        state = workdir / "state"
        config = workdir / "config.json"
        config.write_text(json.dumps({
            "stateDirectory": str(state),
            "household": {"members": [{"label": "owner", "patient": f"cccd:{PATIENT_VALUE}"}],
                          "devices": [{"bluetooth": BP_ADDRESS, "slots": {str(OWNER_SLOT): "owner"}}]},
            "server": {"baseURL": server.base, "retry": {"initialMilliseconds": 200, "maximumSeconds": 2}},
            "gateway": {"ethernetAddress": HUB_MAC},
            "devices": {"discover": False, "profiles": str(REPO / "DeviceProfiles")},
            "bluetooth": {"enabled": True, "adapter": "hci0", "heartRate": {"windowSeconds": 10}},
        }, indent=2))
        cli_log = open(results / "vitalgate-cli.log", "a")

        def vitalgate(*arguments: str, timeout: float = 180) -> subprocess.CompletedProcess:
            result = subprocess.run([str(BIN / "vitalgate"), *arguments], env=env, capture_output=True, text=True,
                                    timeout=timeout)
            cli_log.write(f"$ vitalgate {' '.join(arguments)}\n[exit {result.returncode}]\n{result.stdout}{result.stderr}\n")
            cli_log.flush()
            return result

        # 1. Adopt both devices.
        profiles = ("--profiles", str(REPO / "DeviceProfiles"))
        for key, address in (("bp", BP_ADDRESS), ("hr", HR_ADDRESS)):
            paired = vitalgate("bluetooth", "pair", address, "--adapter", "hci0", "--timeout", "120", *profiles)
            report.check(f"vitalgate bluetooth pair {key} exits 0", paired.returncode == 0,
                         (paired.stdout + paired.stderr)[-1500:])
        bp_status = peripherals.status("bp")
        report.check("the monitor was paired exactly once, Just Works, without failure",
                     bp_status["pairings"] == 1 and bp_status["pairingFailures"] == 0,
                     {k: bp_status[k] for k in ("pairings", "pairingFailures", "encryptions")})
        report.check("BlueZ holds the monitor's bond", device_info(BP_ADDRESS).get("Bonded") == "yes", device_info(BP_ADDRESS))
        report.check("the heart-rate sensor was not asked to pair", peripherals.status("hr")["pairings"] == 0)
        listed = vitalgate("bluetooth", "list", "--json", "--adapter", "hci0", *profiles)
        try:
            listing = json.loads(listed.stdout) if listed.stdout.strip().startswith(("{", "[")) else \
                [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        except json.JSONDecodeError:
            listing = None
        text = json.dumps(listing) if listing is not None else ""
        report.check("vitalgate bluetooth list --json shows both adopted devices",
                     listed.returncode == 0 and BP_ADDRESS in text.upper() and HR_ADDRESS in text.upper(),
                     listed.stdout[-1500:] + listed.stderr[-500:])
        report.phase("pairing")

        daemon = Daemon(workdir, config, env)
        daemon.start()
        report.phase("vitalgated started")
        flow = Flow(report, peripherals, server, patient_id)

        # 2. Stored records.
        def stored_records() -> None:
            flow.wait_confirmed(len(INITIAL_RECORDS), "the monitor's stored records")
            flow.check_server("each stored record of the owner's user slot is on the server once, values and time as "
                              "the monitor sent; the user-2 and unknown-user records are not", exact=True)
            observed = flow.bp_observations()
            report.check("the observations belong to the owner", bool(observed) and all(
                o.get("subject", {}).get("reference") == f"Patient/{patient_id}" for o in observed),
                [o.get("subject") for o in observed])
        flow.step("stored records", stored_records)

        # 3. Heart rate for about 30 s in 10 s windows.
        def heart_rate() -> None:
            wait_for("the heart-rate sensor's subscription", lambda: peripherals.status("hr")["subscribed"] >= 1, 120, 1.0)
            subscribed_at = time.monotonic()
            wait_for("three 10-second heart-rate windows on the server",
                     lambda: len(windowed_heart_rate(server.observations())) >= 3, 120, 2.0)
            windows = windowed_heart_rate(server.observations())
            sent = [entry["rate"] for entry in peripherals.status("hr")["sent"]]
            report.check("heart-rate windows of 10 s with values within the sensor's rates",
                         all(window_ok(w, min(HR_RATES), max(HR_RATES)) for w in windows),
                         {"windows": [summarise_window(w) for w in windows], "notificationsSent": len(sent)})
            report.check("the sensor notified about once a second",
                         len(sent) >= 0.7 * (time.monotonic() - subscribed_at), {"sent": len(sent)})
        flow.step("heart rate", heart_rate)

        # 4. A wrong clock, on a connection the daemon makes when it starts (independent of step 5).
        def wrong_clock() -> None:
            daemon.stop()
            peripherals.request("disappear", device="bp")
            peripherals.request("set-clock", device="bp", offsetSeconds=WRONG_CLOCK_OFFSET)
            writes_before = len(peripherals.status("bp")["clockWrites"])
            confirmed = len(peripherals.status("bp")["delivered"])
            added = peripherals.request("appear", device="bp", records=[WRONG_CLOCK_RECORD])["added"]
            flow.wrong.extend(added)
            daemon.start()
            flow.wait_confirmed(confirmed + 1, "the record stored with the wrong clock")
            wait_for("the hub to set the monitor's clock",
                     lambda: len(peripherals.status("bp")["clockWrites"]) > writes_before, 120, 1.0)
            write = peripherals.status("bp")["clockWrites"][-1]
            skew = abs((datetime.datetime.fromisoformat(write["written"])
                        - datetime.datetime.fromisoformat(write["hostTime"])).total_seconds())
            report.check("the monitor received a Current Time write with the hub's time", skew <= 5, write)
            flow.check_server("the record is uploaded once and nothing is duplicated", flow.confirmed()[-1:])
            corrected = [o for o in flow.bp_observations() if components(o).get("8480-6") == WRONG_CLOCK_RECORD["systolic"]]
            true_time = hub_time(added[0]["deviceTime"]) - datetime.timedelta(seconds=WRONG_CLOCK_OFFSET)
            effective = corrected[0].get("effectiveDateTime") if corrected else None
            report.check("the wrong-clock record's effective time is corrected onto the hub's timeline",
                         bool(effective) and abs((parse_time(effective) - true_time).total_seconds()) <= 30,
                         {"deviceTime": added[0]["deviceTime"], "expected": true_time.isoformat(), "effective": effective})
            coincident = coincident_for(corrected[0], server.observations()) if corrected else None
            report.check("a Coincident Timestamp Observation records the monitor's clock against the hub's",
                         coincident is not None and "valueDateTime" in coincident and abs(
                             (parse_time(coincident["effectiveDateTime"]) - parse_time(coincident["valueDateTime"]))
                             .total_seconds() + WRONG_CLOCK_OFFSET) <= 30, coincident)
        flow.step("wrong clock", wrong_clock)

        # 5. The monitor vanishes and returns with one more record: the running daemon must notice by itself.
        def reconnection() -> None:
            peripherals.request("disappear", device="bp")
            time.sleep(5)
            confirmed = len(peripherals.status("bp")["delivered"])
            peripherals.request("appear", device="bp", records=[RETURN_RECORD])
            flow.wait_confirmed(confirmed + 1, "the record stored while the monitor was away", timeout=150)
            flow.check_server("after reconnecting, the new record is uploaded and nothing is duplicated",
                              flow.confirmed()[-1:])
        flow.step("reconnection", reconnection)

        # 6. Restart the daemon and bluetoothd, bluetoothd last (as when systemd starts it only once an adapter is
        # plugged in): the running daemon takes BlueZ in when it appears, and the bond is reused.
        def restarts() -> None:
            code = daemon.stop()
            report.check("vitalgated stops cleanly on SIGTERM", code == 0, code)
            subprocess.run([str(HERE / "vm-bluetoothd"), "stop"], check=True)
            before = peripherals.status("bp")
            peripherals.request("add-records", device="bp", records=[AFTER_RESTART_RECORD])
            logged = daemon.log_path.stat().st_size
            daemon.start()
            waiting = wait_for("vitalgated to say it waits for bluetoothd", lambda: b"scanning starts when it does" in
                               daemon.log_path.read_bytes()[logged:], 60, 0.5)
            report.check("vitalgated starts without bluetoothd and says it waits for it", waiting and daemon.process.poll() is None)
            subprocess.run([str(HERE / "vm-bluetoothd"), "start"], check=True)
            flow.wait_confirmed(len(before["delivered"]) + len(before["stored"]) + 1, "every record after the restarts")
            new = [d for d in flow.confirmed() if d["bytes"] not in {b["bytes"] for b in before["delivered"]}]
            status = peripherals.status("bp")
            report.check("once bluetoothd started after vitalgated, the link was encrypted with the stored bond, "
                         "no second pairing", status["pairings"] == 1 and status["encryptions"] > before["encryptions"],
                         {k: status[k] for k in ("pairings", "pairingFailures", "encryptions")})
            flow.check_server("after the restarts the records the monitor sent are on the server once", new)
        flow.step("restarts", restarts)

        # 7. The operator's view agrees with the server.
        def queue() -> None:
            def counts() -> dict:
                result = vitalgate("queue", "--json", "--config", str(config))
                return json.loads(result.stdout)["counts"] if result.returncode == 0 else {}
            flow.check_server("every record of the owner's slot the monitor had confirmed is on the server exactly once, "
                              "and nothing else", exact=True)
            # Counted before the queue is read: the heart-rate stream goes on meanwhile, so the queue can only have more.
            uploaded = len(flow.bp_observations()) + len(windowed_heart_rate(server.observations()))
            drained = wait_for("the queue to drain", lambda: (q := counts()) and q.get("pending", 1) == 0
                               and q.get("in-flight", 1) == 0 and q, 120, 2.0)
            report.check("vitalgate queue --json: nothing pending or dead, the user-2 and unknown-user records "
                         "unassigned, the rest delivered",
                         drained.get("unassigned") == 2 and not drained.get("dead") and drained.get("delivered", 0) >= uploaded,
                         {"counts": drained, "onTheServerBefore": uploaded})
        flow.step("queue", queue)
        code = daemon.stop()
        daemon = None
        report.check("vitalgated stops cleanly at the end", code == 0, code)
        report.check("the daemon's log names no patient identifier",
                     PATIENT_VALUE not in (workdir / "vitalgated.log").read_text())
    finally:
        if daemon:
            daemon.stop()
        save_observations(server, results)
        for name in ("vitalgated.log", "fhir.log", "config.json"):
            if (workdir / name).exists():
                (results / f"pipeline-{name}").write_text((workdir / name).read_text())
        peripherals.stop()
        server.stop()


class Flow:
    """What the steps share: the checks that every record the monitor confirmed is on the server exactly
    once, and step-by-step error handling so one failed step does not hide the next ones."""

    def __init__(self, report: Report, peripherals: Peripherals, server: Server, patient_id: str) -> None:
        self.report = report
        self.peripherals = peripherals
        self.server = server
        self.patient_id = patient_id
        self.wrong: list[dict] = []  # records stamped by the wrong clock: their effective time is corrected

    def step(self, name: str, function) -> None:
        try:
            function()
        except (TimeoutError, RuntimeError, OSError, KeyError, ValueError) as error:
            self.report.check(f"{name}: the step completed", False, f"{type(error).__name__}: {error}")
        self.report.phase(name)

    def wait_confirmed(self, count: int, what: str, timeout: float = 180) -> None:
        wait_for(f"{what} to be confirmed (indications)", lambda: len(self.peripherals.status("bp")["delivered"]) >= count,
                 timeout, 1.0)

    def bp_observations(self) -> list[dict]:
        return [o for o in self.server.observations() if has_code(o, LOINC_BLOOD_PRESSURE)]

    def confirmed(self) -> list[dict]:
        return [d for d in self.peripherals.status("bp")["delivered"] if d["user"] == OWNER_SLOT]

    def check_server(self, name: str, entries: list[dict] | None = None, exact: bool = False) -> None:
        """The given confirmed records (default: every one of unknown user) are on the server, by values and
        device time (by values alone for the wrong-clock records, whose time is checked on its own), and no
        blood-pressure Observation is there twice; `exact`: and no other blood-pressure Observation either."""
        entries = self.confirmed() if entries is None else entries
        wrong_bytes = {w["bytes"] for w in self.wrong}

        def matched() -> dict:
            return match_records([d for d in entries if d["bytes"] not in wrong_bytes], self.bp_observations(),
                                 tolerance_seconds=5, loose=[d for d in entries if d["bytes"] in wrong_bytes])
        try:
            wait_for(f"{len(entries)} record(s) on the server", lambda: matched()["ok"], 90, 2.0)
        except TimeoutError:
            pass  # reported below with what is missing
        result = matched()
        duplicates = duplicated(self.bp_observations())
        self.report.check(name, result["ok"] and not duplicates and not (exact and result["unexpected"]),
                          {**result, "duplicates": duplicates})


def duplicated(observations: list[dict]) -> list[dict]:
    """Blood-pressure Observations with the same values and effective time as another one."""
    seen: dict[tuple, int] = {}
    for observation in observations:
        key = (tuple(sorted(components(observation).items())), observation.get("effectiveDateTime"))
        seen[key] = seen.get(key, 0) + 1
    return [{"values": dict(key[0]), "effective": key[1], "copies": n} for key, n in seen.items() if n > 1]


def match_records(records: list[dict], observations: list[dict], tolerance_seconds: float,
                  loose: list[dict] = ()) -> dict:
    """Pairs each record the monitor sent with one Observation by values and effective time (`loose` ones by
    values only)."""
    unmatched = list(observations)
    missing = []
    for record in [*records, *loose]:
        timed = record in records
        found = None
        for observation in unmatched:
            values = components(observation)
            when = observation.get("effectiveDateTime")
            if (values.get("8480-6") == record["systolic"] and values.get("8462-4") == record["diastolic"] and when
                    and (not timed or abs((parse_time(when) - hub_time(record["deviceTime"])).total_seconds())
                         <= tolerance_seconds)):
                found = observation
                break
        if found is None:
            missing.append({k: record[k] for k in ("systolic", "diastolic", "deviceTime")})
        else:
            unmatched.remove(found)
    return {"ok": not missing, "missing": missing,
            "unexpected": [{"values": components(o), "effective": o.get("effectiveDateTime")} for o in unmatched]}


def windowed_heart_rate(observations: list[dict]) -> list[dict]:
    return [o for o in observations if has_code(o, LOINC_HEART_RATE) and "effectivePeriod" in o]


def summarise_window(observation: dict) -> dict:
    return {"period": observation.get("effectivePeriod"), "value": observation.get("valueQuantity", {}).get("value"),
            "components": components(observation)}


def window_ok(observation: dict, low: int, high: int) -> bool:
    period = observation.get("effectivePeriod", {})
    if "start" not in period or "end" not in period:
        return False
    length = (parse_time(period["end"]) - parse_time(period["start"])).total_seconds()
    value = observation.get("valueQuantity", {}).get("value")
    return 0 < length <= 10.5 and value is not None and low <= value <= high


def coincident_for(observation: dict, observations: list[dict]) -> dict | None:
    """The Coincident Timestamp Observation the blood-pressure Observation's extension points at (by id on the
    server), or else the one closest in time."""
    reference = next((e.get("valueReference", {}).get("reference") for e in observation.get("extension", [])
                      if e.get("url", "").endswith("CoincidentTimeStampReference")), None)
    candidates = [o for o in observations if has_code(o, MDC_TIME_ABS)]
    if reference:
        for candidate in candidates:
            if reference.endswith(f"Observation/{candidate.get('id')}"):
                return candidate
    return None


def save_observations(server: Server, results: Path) -> None:
    try:
        observations = server.observations()
    except Exception as error:  # the server may be the thing that failed
        log(f"could not fetch the Observations: {error}")
        return
    folder = results / "observations"
    folder.mkdir(exist_ok=True)
    for number, observation in enumerate(observations):
        (folder / f"observation-{number:03d}.json").write_text(json.dumps(observation, indent=2))
    log(f"saved {len(observations)} Observations for the host's validator")
