"""Repeats the delivery benchmarks and prints medians as JSON lines (see scripts/benchmark-delivery)."""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "daemon-harness"))
import harness  # noqa: E402


def fsyncs(strace_output: Path) -> int:
    total = 0
    for line in strace_output.read_text().splitlines():
        match = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$", line)
        if match:
            total += int(match.group(1))
    return total


def ingest(binary: str, runs: int, readings: int, per_commit: int) -> dict:
    """Timed runs without tracing; one more run under strace counts the fsyncs (tracing slows every call)."""
    rates = []

    def once(directory: str, traced: Path | None) -> dict:
        command = [binary, "ingest", "--db", f"{directory}/outbox.db", "--readings", str(readings),
                   "--per-commit", str(per_commit)]
        if traced:
            command = [shutil.which("strace"), "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(traced)] + command
        return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])

    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="vitalgate-ingest-") as directory:
            rates.append(float(once(directory, None)["readingsPerSecond"]))
    figure = {"benchmark": "outbox-ingest", "readings": readings, "perCommit": per_commit, "runs": runs,
              "medianReadingsPerSecond": round(statistics.median(rates), 1),
              "minReadingsPerSecond": round(min(rates), 1), "maxReadingsPerSecond": round(max(rates), 1)}
    if shutil.which("strace"):
        with tempfile.TemporaryDirectory(prefix="vitalgate-ingest-") as directory:
            counted = Path(directory) / "strace.txt"
            once(directory, counted)
            figure["fsyncsPerReading"] = round(fsyncs(counted) / readings, 3)
            figure["fsyncsCountedBy"] = "strace -c on one more run (fsync+fdatasync, whole process incl. open and schema)"
    return figure


def drain(binary: str, runs: int, readings: int, batch: int) -> dict:
    results = []
    for run in range(runs):
        workdir = Path(tempfile.mkdtemp(prefix="vitalgate-drain-"))
        server = harness.FHIRServer(workdir)
        try:
            server.create_patient()
            output = subprocess.run([binary, "drain", "--db", str(workdir / "outbox.db"), "--server", server.base,
                                     "--readings", str(readings), "--batch", str(batch), "--run-id", f"{batch:04x}{run:04x}"],
                                    capture_output=True, text=True, check=True).stdout
            results.append(json.loads(output.splitlines()[-1]))
        finally:
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    rates = [float(r["readingsPerSecond"]) for r in results]
    middle = sorted(results, key=lambda r: float(r["readingsPerSecond"]))[len(results) // 2]
    return {"benchmark": "backlog-drain", "readings": readings, "batch": batch, "runs": runs,
            "medianReadingsPerSecond": round(statistics.median(rates), 1),
            "minReadingsPerSecond": round(min(rates), 1), "maxReadingsPerSecond": round(max(rates), 1),
            "requests": middle["requests"], "bytesSent": middle["bytesSent"], "bytesReceived": middle["bytesReceived"],
            "delivered": middle["delivered"], "created": middle["created"], "dead": middle["dead"], "retried": middle["retried"],
            "server": "sekmet-fhir 0.1.1 on 127.0.0.1"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--readings", type=int, default=1000)
    parser.add_argument("--drain-readings", type=int, default=10000)
    parser.add_argument("--batches", default="10 50 100 250")
    arguments = parser.parse_args()
    for per_commit in (1, 20):
        print(json.dumps(ingest(arguments.binary, arguments.runs, arguments.readings, per_commit)), flush=True)
    drain_runs = max(1, min(arguments.runs, 3))
    for batch in [int(b) for b in arguments.batches.split()]:
        print(json.dumps(drain(arguments.binary, drain_runs, arguments.drain_readings, batch)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
