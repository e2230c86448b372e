"""testbed.py's device-side helpers, which device-session tests build on: pty masters, raw hidraw stand-ins,
HIDIOCSFEATURE answered through umockdev's ioctl handler, and the open counter. Runs testbed_scenario.py
in the system python3 (the venv has no `gi`) and checks the JSON it prints."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def test_a_host_program_talks_to_emulated_hidraw_and_serial_nodes():
    assert Path(SYSTEM_PYTHON).exists(), "/usr/bin/python3 is missing. Fix: run scripts/install-deps"
    done = subprocess.run([SYSTEM_PYTHON, str(HERE / "testbed_scenario.py")], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip(), f"the scenario printed nothing (exit {done.returncode}); stderr:\n{done.stderr}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result.get("traceback", result)
    assert result["hostExit"] == 0, result
    # The feature report arrives whole, report id first, and the ioctl returns its length.
    assert result["featureReports"] == ["0074bc"]
    assert result["hostLines"][0] == "feature 3"
    # Raw in both directions: 0A and 0D are neither translated nor echoed.
    assert result["hostWrote"] == "000a0d030000000000"
    assert result["hostLines"][1] == "report 0a0d550000000000"
    assert result["hostLines"][2] == "serial 024f4b03"
    # The host opened each node once, and the counter saw it.
    assert result["opens"] == {"omron-hem-790it": 1, "cp2102-a": 1}
