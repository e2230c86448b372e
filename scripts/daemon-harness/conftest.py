"""Fixtures the daemon-harness tests share."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real FHIR server on 127.0.0.1 with the demo citizen; `server.patient_id` is her Patient id."""
    server = harness.FHIRServer(tmp_path_factory.mktemp("fhir"))
    server.patient_id = server.create_patient()
    yield server
    server.stop()
