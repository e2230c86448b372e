"""Runs inside a private mount namespace (see test_daemon.py): the daemon's state directory on a small tmpfs
that is filled up and then freed, while a simulated cuff keeps sending. Prints one JSON line."""
from __future__ import annotations

import argparse
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def fill(directory: Path) -> Path:
    """Writes a ballast file until the file system refuses another byte."""
    ballast = directory / "ballast"
    descriptor = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(descriptor)
    return ballast


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--reserve-mib", type=int, default=1)
    arguments = parser.parse_args()
    workdir = arguments.workdir
    state = workdir / "state"
    state.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(state)], check=True)
    config_path = harness.write_config(workdir, arguments.server, state=state)
    config = json.loads(config_path.read_text())
    config["outbox"]["reservedFreeMiB"] = arguments.reserve_mib
    config_path.write_text(json.dumps(config))

    source = harness.ReadingSource(seed=11 + arguments.reserve_mib)
    base = 700_000 + arguments.reserve_mib * 1000
    acknowledged: list[str] = []
    daemon = harness.Daemon(workdir, config_path)
    try:
        return run(daemon, source, base, state, acknowledged)
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
        subprocess.run(["umount", "-l", str(state)], check=False)


def run(daemon, source, base, state, acknowledged) -> int:
    assert daemon.wait_ready(), daemon.log_path.read_text()
    client = harness.IngestClient(daemon.socket_path)
    first = [source.make(base + n) for n in range(3)]
    assert client.send(first)["ok"]
    acknowledged += [harness.ReadingSource.device_time(r) for r in first]
    harness.wait_drained(str(state))

    ballast = fill(state)
    refused = 0
    while_full = [source.make(base + 10 + n) for n in range(3)]
    for reading in while_full:
        answer = client.send([reading])
        if answer["ok"]:
            acknowledged.append(harness.ReadingSource.device_time(reading))
        else:
            refused += 1
            assert answer.get("retry") is True, answer
    alive = daemon.process.poll() is None

    ballast.unlink()
    answers = [client.send([reading]) for reading in while_full]
    after = sum(1 for answer in answers if answer["ok"])
    for reading, answer in zip(while_full, answers):
        if answer["ok"]:
            acknowledged.append(harness.ReadingSource.device_time(reading))
    client.close()
    harness.wait_drained(str(state))
    code = daemon.terminate()
    log = daemon.log_path.read_text()
    print(json.dumps({"refusedWhileFull": refused, "daemonAliveWhileFull": alive,
                      "sentAfterSpaceReturned": len(while_full), "acknowledgedAfterSpaceReturned": after,
                      "acknowledgedDeviceTimes": sorted(set(acknowledged)), "exitCode": code,
                      "logMentionsFull": "full" in log.lower()}))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
