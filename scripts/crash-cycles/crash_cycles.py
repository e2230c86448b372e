"""SIGKILL vitalgated at random points during ingest and upload, restart it, repeat; then compare what the
simulated source produced with what the FHIR server holds. Zero lost and zero duplicated is the pass mark.

The source behaves like a blood-pressure monitor: a reading leaves its memory only when the hub acknowledged
it, so after a kill it sends the unacknowledged ones again (some of which the hub may already have stored).
"""
from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon-harness"))
import harness  # noqa: E402


def in_flight_rows(state_dir: Path) -> int:
    """Readings the killed daemon had marked in flight: the kill landed during an upload."""
    try:
        with sqlite3.connect(f"file:{state_dir / 'outbox.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM readings WHERE state = 'in-flight'").fetchone()[0]
    except sqlite3.Error:
        return 0


def verdict(result: dict) -> list[str]:
    """What is wrong with a crash run's result; empty when it passed. Shared by the test and the CLI."""
    problems = []
    for key in ("lost", "duplicated", "unexpected", "daemonStartFailures"):
        if result[key] != 0:
            problems.append(f"{key} = {result[key]}")
    if result["acknowledged"] != result["produced"] or result["onServer"] != result["produced"]:
        problems.append(f"produced {result['produced']}, acknowledged {result['acknowledged']}, on the server {result['onServer']}")
    if result["finalExitCode"] != 0:
        problems.append(f"the final clean stop exited {result['finalExitCode']}")
    return problems


def run(cycles: int, seed: int, workdir: Path, verbose: bool = False) -> dict:
    # The main thread and each cycle's feeder draw from their own generators, so a seed replays the same plan.
    rng = random.Random(seed)
    server = harness.FHIRServer(workdir)
    started: list[harness.Daemon] = []
    try:
        patient_id = server.create_patient()
        config = harness.write_config(workdir, server.base, batch_size=rng.choice([3, 5, 8]))
        state_dir = Path(json.loads(config.read_text())["stateDirectory"])
        source = harness.ReadingSource(seed)
        unacked: list[int] = []
        acked: set[int] = set()
        next_number = 0
        totals = {"cycles": 0, "kills": 0, "killsDuringIngest": 0, "killsDuringUpload": 0, "resent": 0,
                  "refusals": 0, "daemonStartFailures": 0}

        for cycle in range(cycles):
            daemon = harness.Daemon(workdir, config)
            started[:] = [daemon]
            if not daemon.wait_ready():
                totals["daemonStartFailures"] += 1
                daemon.kill()
                continue
            stop = threading.Event()
            outstanding: list[int] = []
            lock = threading.Lock()

            feed_rng = random.Random(rng.random())

            def feed():
                nonlocal next_number
                try:
                    client = harness.IngestClient(daemon.socket_path, timeout=10)
                except OSError:
                    return
                pending = list(unacked)
                while not stop.is_set():
                    if pending:
                        batch = pending[:feed_rng.randint(1, 5)]
                        del pending[:len(batch)]
                        totals["resent"] += len(batch)
                    else:
                        batch = list(range(next_number, next_number + feed_rng.randint(1, 5)))
                        next_number += len(batch)
                        for number in batch:
                            source.make(number)
                            unacked.append(number)
                    with lock:
                        outstanding[:] = batch
                    try:
                        answer = client.send([source.produced[number] for number in batch])
                    except (OSError, ConnectionError, ValueError):
                        return
                    with lock:
                        outstanding.clear()
                    if answer.get("ok"):
                        for number in batch:
                            acked.add(number)
                            if number in unacked:
                                unacked.remove(number)
                    else:
                        totals["refusals"] += 1
                    time.sleep(feed_rng.uniform(0, 0.02))

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            if cycle % 2 == 0:
                # A random point: ingest, commit, upload or idle, whichever it lands on.
                time.sleep(rng.uniform(0.05, 1.2))
            else:
                # Aim at an upload: wait until readings are marked in flight, then kill within a few ms.
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and in_flight_rows(state_dir) == 0:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.01))
            with lock:
                during_ingest = bool(outstanding)
            daemon.kill()
            stop.set()
            feeder.join(15)
            totals["cycles"] += 1
            totals["kills"] += 1
            totals["killsDuringIngest"] += during_ingest
            if in_flight_rows(state_dir) > 0:
                totals["killsDuringUpload"] += 1
            if verbose:
                print(f"cycle {cycle + 1}: produced {next_number}, acked {len(acked)}, unacked {len(unacked)}", flush=True)

        # The source hands over what is still unacknowledged; the daemon drains the queue and stops cleanly.
        daemon = harness.Daemon(workdir, config, name="final")
        started[:] = [daemon]
        assert daemon.wait_ready(), "the daemon did not start for the final drain"
        client = harness.IngestClient(daemon.socket_path)
        while unacked:
            batch = unacked[:20]
            answer = client.send([source.produced[number] for number in batch])
            assert answer.get("ok"), answer
            acked.update(batch)
            del unacked[:len(batch)]
        client.close()
        counts = harness.wait_drained(str(state_dir))
        exit_code = daemon.terminate()

        copies = harness.server_readings(server, patient_id)
        effective = harness.effective_times(server, patient_id)
        produced_times = {harness.ReadingSource.device_time(r) for r in source.produced.values()}
        # A reading stored twice under different identifiers still shows as two Observations at its time.
        per_time: dict[str, int] = {}
        for time_text in effective:
            per_time[time_text[:19]] = per_time.get(time_text[:19], 0) + 1
        found_times = set(per_time)
        result = {
            **totals,
            "seed": seed,
            "produced": len(source.produced),
            "acknowledged": len(acked),
            "onServer": len(copies),
            "lost": len(produced_times - found_times),
            "duplicated": max(sum(count - 1 for count in copies.values() if count > 1),
                              sum(count - 1 for count in per_time.values() if count > 1)),
            "unexpected": len(found_times - produced_times),
            "outbox": counts,
            "finalExitCode": exit_code,
        }
        return result
    finally:
        for daemon in started:
            if daemon.process.poll() is None:
                daemon.kill()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--verbose", action="store_true")
    arguments = parser.parse_args()
    workdir = arguments.workdir or harness.temporary_directory("vitalgate-crash-")
    # Said first, so that a run that fails half-way can be replayed.
    print(f"crash-cycles: seed {arguments.seed}, {arguments.cycles} cycles, work directory {workdir}", file=sys.stderr, flush=True)
    result = run(arguments.cycles, arguments.seed, workdir, arguments.verbose)
    result["workdir"] = str(workdir)
    print(json.dumps(result))
    problems = verdict(result)
    for problem in problems:
        print(f"crash-cycles: FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
