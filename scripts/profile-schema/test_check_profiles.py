"""The profile schema against the shipped profiles and the loader's broken-profile fixtures.

Tests/Fixtures/broken-profiles/cases.json says, per fixture, whether the schema can express what is
wrong (`"schema": "rejects"`) or only VitalGate's loader can (`"accepts"`). A rejected fixture must be
rejected at (or above) the field the loader names; an accepted one must pass the schema, which shows
the fixture breaks only the one rule it is about.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_profiles  # noqa: E402

FIXTURES = os.path.join(check_profiles.REPOSITORY, "Tests", "Fixtures", "broken-profiles")
with open(os.path.join(FIXTURES, "cases.json"), encoding="utf-8") as handle:
    CASES = json.load(handle)["cases"]


@pytest.fixture(scope="module")
def validator():
    return check_profiles.load_validator()




def test_shipped_profiles_validate(validator):
    files = check_profiles.profile_files(check_profiles.DEFAULT_TREE)
    assert files, "no profiles found under DeviceProfiles/"
    problems = {file: check_profiles.check_file(file, validator) for file in files}
    assert {file: found for file, found in problems.items() if found} == {}


@pytest.mark.parametrize("name", ["good.json", "good-ble.json"])
def test_good_fixtures_validate(validator, name):
    assert check_profiles.check_file(os.path.join(FIXTURES, name), validator) == []


def test_every_fixture_has_a_case():
    files = {name for name in os.listdir(FIXTURES) if name.endswith(".json")} - {"cases.json", "good.json", "good-ble.json"}
    assert files == {case["file"] for case in CASES}
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_broken_fixture(validator, case):
    problems = check_profiles.check_file(os.path.join(FIXTURES, case["file"]), validator)
    if case["schema"] == "rejects":
        assert problems, f"the schema accepts {case['file']}, which it should reject at {case['field'] or '(top level)'}"
        assert any(check_profiles.within(path, case["field"]) for path, _ in problems), \
            f"the schema rejects {case['file']} at {problems}, not at or above {case['field']}"
    else:
        assert problems == [], (
            f"the schema rejects {case['file']} ({problems}); either the fixture is broken in more than one way, "
            f"or the schema learned this rule: then set \"schema\": \"rejects\" in cases.json")


def test_paths_use_the_loaders_notation():
    assert check_profiles.json_path(["engine", "frames", "messages", 1, "name"]) == "engine.frames.messages[1].name"
    assert check_profiles.json_path([]) == "(top level)"
    assert check_profiles.json_path(["kinds", 0]) == "kinds[0]"


def run(*arguments):
    return subprocess.run([sys.executable, os.path.join(HERE, "check_profiles.py"), *arguments],
                          capture_output=True, text=True, check=False)


def test_command_line():
    good = run(os.path.join(FIXTURES, "good.json"), os.path.join(FIXTURES, "good-ble.json"))
    assert (good.returncode, good.stdout, good.stderr) == (0, "", "")

    broken_file = os.path.join(FIXTURES, "baud-not-standard.json")
    broken = run(os.path.join(FIXTURES, "good.json"), broken_file)
    assert broken.returncode == 1
    assert broken.stdout.splitlines() == [
        f"{broken_file}: transport.serial.baud: 19201 is not one of "
        "[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600]"]

    not_json = os.path.join(FIXTURES, "not-json-trailing-comma.json")
    assert run(not_json).stdout.startswith(f"{not_json}: (file): not valid JSON at 48:1")

    assert run().returncode == 0  # the shipped tree by default
    assert run("/nonexistent.json").returncode == 2
    assert run("--bogus").returncode == 2


def test_tree_walk_skips_the_schema_and_capture_folders(tmp_path):
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "profile.schema.json").write_text("{}")
    (tmp_path / "vendor" / "model").mkdir(parents=True)
    (tmp_path / "vendor" / "model" / "session.expected.json").write_text("{}")
    (tmp_path / "vendor" / "model.json").write_text("{}")
    assert check_profiles.profile_files(str(tmp_path)) == [str(tmp_path / "vendor" / "model.json")]
