"""vitalgated's Prometheus text file for node_exporter's textfile collector, read as the collector would read it,
while the real daemon takes readings from `vitalgate ingest` and delivers them to the real FHIR server."""
from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Every label the file may carry, with every value it may take: where from, why, which state, which version.
ALLOWED_LABELS = {
    "source": {"device", "ingest"},
    "reason": {"unreadable", "malformed", "not-stored"},
    "state": {"pending", "in-flight", "unassigned", "dead"},
    "version": None,  # checked against `vitalgate version`
}


def parse_exposition(text: str) -> tuple[dict[tuple, float], dict[str, str]]:
    """Series (name, sorted labels) -> value, and family -> type; raises AssertionError where a rule of the text
    format (0.0.4) is broken: one HELP and TYPE per family before its samples, a family's lines together, valid
    names, only the three label-value escapes, no duplicate series, counters named *_total, a final line feed."""
    assert text.endswith("\n"), "the file does not end with a line feed"
    series: dict[tuple, float] = {}
    types: dict[str, str] = {}
    helps: set[str] = set()
    done: set[str] = set()
    current = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            keyword, name, *rest = line[2:].split(" ", 2)
            assert METRIC_NAME.fullmatch(name), line
            if keyword == "HELP":
                assert name not in helps, f"a second HELP: {line}"
                helps.add(name)
            else:
                assert name not in types, f"a second TYPE: {line}"
                assert rest and rest[0] in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert not any(key[0] == name for key in series), f"TYPE after samples: {line}"
                types[name] = rest[0]
                if rest[0] == "counter":
                    assert name.endswith("_total"), f"a counter not named *_total: {line}"
        else:
            assert line and not line.startswith("#"), f"unexpected line: {line!r}"
            name, labels, value = parse_sample(line)
            assert name in types, f"a sample before its TYPE: {line}"
            key = (name, tuple(sorted(labels.items())))
            assert key not in series, f"a duplicate series: {line}"
            if types[name] == "counter":
                assert value >= 0, line
            series[key] = value
        if name != current:
            assert name not in done, f"{name} continues after another family"
            if current:
                done.add(current)
            current = name
    assert helps == set(types), "a family without HELP or TYPE"
    return series, types


def parse_sample(line: str) -> tuple[str, dict[str, str], float]:
    match = METRIC_NAME.match(line)
    assert match, line
    name, rest = match.group(), line[match.end():]
    labels: dict[str, str] = {}
    if rest.startswith("{"):
        rest = rest[1:]
        while not rest.startswith("}"):
            label = LABEL_NAME.match(rest)
            assert label and not label.group().startswith("__") and label.group() not in labels, line
            rest = rest[label.end():]
            assert rest.startswith('="'), line
            rest, value = rest[2:], []
            while True:
                assert rest, f"an unterminated label value: {line}"
                char, rest = rest[0], rest[1:]
                if char == '"':
                    break
                if char == "\\":
                    assert rest and rest[0] in '\\"n', f"a bad escape: {line}"
                    value.append({"\\": "\\", '"': '"', "n": "\n"}[rest[0]])
                    rest = rest[1:]
                else:
                    value.append(char)
            labels[label.group()] = "".join(value)
            if rest.startswith(","):
                rest = rest[1:]
            else:
                assert rest.startswith("}"), line
        rest = rest[1:]
    assert rest.startswith(" ") and " " not in rest[1:], f"a sample needs one value and no timestamp: {line}"
    text = rest[1:]
    value = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(text)
    if value is None:
        assert re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", text), line
        value = float(text)
    return name, labels, value


def read_metrics(path: Path) -> dict[tuple, float]:
    series, _ = parse_exposition(path.read_text())
    return series


def value(series: dict[tuple, float], name: str, **labels: str) -> float:
    return series[(name, tuple(sorted(labels.items())))]


def metrics_config(tmp_path: Path, base_url: str, textfile: Path) -> Path:
    path = harness.write_config(tmp_path, base_url)
    config = json.loads(path.read_text())
    config["devices"] = {"discover": False}
    config["bluetooth"] = {"enabled": False}
    config["metrics"] = {"textfile": str(textfile), "intervalSeconds": 1}
    path.write_text(json.dumps(config, indent=2))
    return path


def test_the_metrics_file_counts_what_was_stored_and_uploaded_and_names_no_one(server, tmp_path):
    textfile = tmp_path / "textfile" / "vitalgate.prom"
    textfile.parent.mkdir()
    config = metrics_config(tmp_path, server.base, textfile)
    count = 7  # counts that cannot be mistaken for a measured value below
    source = harness.ReadingSource(seed=31)
    readings = [source.make(700_000 + n) for n in range(count)]
    lines = tmp_path / "readings.jsonl"
    lines.write_text("".join(json.dumps(reading) + "\n" for reading in readings))
    daemon = harness.Daemon(tmp_path, config)
    try:
        assert daemon.wait_ready(), daemon.log_path.read_text()
        started = time.time()
        ingest = [str(harness.binary("vitalgate")), "ingest", str(lines), "--config", str(config)]
        first = subprocess.run(ingest, capture_output=True, text=True)
        assert first.returncode == 0 and f"stored {count} reading(s)" in first.stdout, first.stdout + first.stderr
        again = subprocess.run(ingest, capture_output=True, text=True)
        assert again.returncode == 0 and f"{count} already stored" in again.stdout, again.stdout + again.stderr
        # One request the daemon cannot read: refused, counted as malformed, nothing stored.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(30)
            raw.connect(daemon.socket_path)
            raw.sendall(b'{"readings": [{"no reading": true}]}\n')
            assert json.loads(raw.makefile().readline())["ok"] is False

        harness.wait_drained(json.loads(config.read_text())["stateDirectory"])

        def uploaded():
            if not textfile.exists():
                return None
            series = read_metrics(textfile)
            return series if value(series, "vitalgate_readings_uploaded_total") == count else None
        series = harness.wait_for("the metrics file to show every reading uploaded", uploaded, 120, 0.1)
        log = daemon.log_path.read_text()
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log_path.read_text()
    now = time.time()

    assert value(series, "vitalgate_readings_stored_total") == count
    assert value(series, "vitalgate_readings_uploaded_total") == count
    assert value(series, "vitalgate_readings_duplicate_total") == count
    assert value(series, "vitalgate_readings_received_total", source="ingest") == 2 * count + 1
    assert value(series, "vitalgate_readings_decoded_total", source="ingest") == 2 * count
    assert value(series, "vitalgate_readings_rejected_total", reason="malformed") == 1
    assert value(series, "vitalgate_readings_rejected_total", reason="not-stored") == 0
    assert value(series, "vitalgate_readings_dead_lettered_total") == 0
    for state in ("pending", "in-flight", "unassigned", "dead"):
        assert value(series, "vitalgate_queue_readings", state=state) == 0, state
    assert value(series, "vitalgate_oldest_unsent_reading_age_seconds") == 0
    assert value(series, "vitalgate_quarantined_rows") == 0
    assert value(series, "vitalgate_outbox_readable") == 1
    start_time = value(series, "vitalgate_start_time_seconds")
    assert started - 120 < start_time <= started
    assert start_time <= value(series, "vitalgate_last_upload_timestamp_seconds") <= now

    # The file is the collector's to read: mode 0644, no temporary file left after the stop. (That it is written once
    # more at the stop is MetricsFileTests' writtenAtStop: here a periodic write could not be told from it.)
    assert textfile.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in textfile.parent.iterdir()] == ["vitalgate.prom"]
    final = read_metrics(textfile)
    assert value(final, "vitalgate_readings_uploaded_total") == count
    assert "<4>metrics" not in log and "<3>" not in log, log

    # No patient identifier, device identity, device time or measured value: labels only from a fixed set, and
    # no sample value equal to a measured one.
    text = textfile.read_text()
    version = subprocess.run([str(harness.binary("vitalgate")), "version"], capture_output=True, text=True).stdout
    for forbidden in [harness.PATIENT_VALUE, "cccd", harness.PATIENT_SYSTEM, harness.HUB_MAC]:
        assert forbidden not in text, forbidden
    for reading in readings:
        for identity in reading["device"].values():
            assert str(identity) not in text, identity
        assert harness.ReadingSource.device_time(reading) not in text
    measured = {item["value"] for reading in readings for item in reading["values"]}
    for (name, labels), sample in final.items():
        assert sample not in measured, (name, labels, sample)
        for label, label_value in labels:
            assert label in ALLOWED_LABELS, label
            allowed = ALLOWED_LABELS[label]
            assert label_value in allowed if allowed is not None else label_value in version, (label, label_value)


def test_a_missing_textfile_directory_is_one_warning_and_the_daemon_goes_on(server, tmp_path):
    textfile = tmp_path / "later" / "vitalgate.prom"
    config = metrics_config(tmp_path, server.base, textfile)
    daemon = harness.Daemon(tmp_path, config)
    try:
        assert daemon.wait_ready(), daemon.log_path.read_text()
        harness.wait_for("the warning about the missing directory", lambda: "<4>metrics: cannot create" in daemon.log_path.read_text(), 120, 0.1)
        # Several more intervals (1 s each) fail the same way; the readings still go through.
        client = harness.IngestClient(daemon.socket_path)
        source = harness.ReadingSource(seed=32)
        assert client.send([source.make(710_000 + n) for n in range(3)])["ok"]
        client.close()
        harness.wait_drained(json.loads(config.read_text())["stateDirectory"])
        time.sleep(3)
        textfile.parent.mkdir()
        harness.wait_for("the file to be written once its directory existed",
                         lambda: "metrics: " + str(textfile) + " is written again" in daemon.log_path.read_text(), 120, 0.1)
        series = harness.wait_for("the metrics file", lambda: textfile.exists() and read_metrics(textfile), 120, 0.1)
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log_path.read_text()
    log = daemon.log_path.read_text()
    warnings = [line for line in log.splitlines() if line.startswith("<4>metrics")]
    assert len(warnings) == 1, warnings
    assert "Fix: create " + str(textfile.parent) in warnings[0]
    assert value(series, "vitalgate_readings_stored_total") == 3
