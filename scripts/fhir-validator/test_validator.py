"""Proves the validator accepts VitalGate's resource shapes and pinpoints each deliberate mistake.

Every file in cases/invalid/ breaks exactly one thing; its expected errors are listed in
EXPECTED_ERRORS and must match *exactly* (path and rule), so neither a validator that rejects
everything nor one that reports vague or extra errors can pass.  No network is used.
"""
import copy
import glob
import json
import os
import statistics
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vitalgate_fhir_validator as vfv  # noqa: E402

SCRIPT = os.path.join(HERE, "vitalgate_fhir_validator.py")
VALID_DIR = os.path.join(HERE, "cases", "valid")
INVALID_DIR = os.path.join(HERE, "cases", "invalid")

EXPECTED_VALID = {
    "bp-observation", "heart-rate-observation", "heart-rate-data-absent-reason",
    "bp-component-data-absent-reason", "phd-device", "phg-device", "collection-bundle",
    "transaction-bundle",
}

# case name -> [(path, rule, substring expected in the message or None)]
EXPECTED_ERRORS = {
    "bp-missing-diastolic-component": [("Observation.component", "slice-cardinality", "DiastolicBP")],
    "bp-systolic-unit-code-mmHg": [
        ("Observation.component[0].valueQuantity.code", "fixed", '"mm[Hg]"'),
        ("Observation.component[0].valueQuantity.code", "binding", "ucum-vitals-common")],
    "observation-status-done": [("Observation.status", "binding", "observation-status")],
    "heart-rate-missing-subject": [("Observation.subject", "cardinality", "heartrate")],
    "heart-rate-missing-effective": [("Observation.effective[x]", "cardinality", "minimum cardinality 1")],
    "heart-rate-effective-month-13": [("Observation.effectiveDateTime", "format", "2025-13-01")],
    "heart-rate-effective-not-precise-to-day": [("Observation.effectiveDateTime", "vs-1", "precise to the day")],
    "heart-rate-unknown-element-valueQty": [
        ("Observation.valueQty", "unknown-element", "valueQty"),
        ("Observation", "vs-2", None)],
    "heart-rate-no-value-no-data-absent-reason": [("Observation", "vs-2", "data absent reason")],
    "heart-rate-unit-beats-profile-not-claimed": [("Observation.valueQuantity.code", "fixed", '"/min"')],
    "bp-claimed-without-vital-signs-category": [("Observation.category", "slice-cardinality", "VSCat")],
    "heart-rate-value-as-json-string": [("Observation.valueQuantity.value", "json-type", "decimal")],
    "heart-rate-valueString-closed-value-slicing": [
        ("Observation.valueString", "slice-closed", "closed slicing"),
        ("Observation.valueString", "type-not-allowed", "heartrate")],
    "observation-value-and-data-absent-reason": [("Observation", "obs-6", None)],
    "bp-component-without-value-or-data-absent-reason": [("Observation.component[1]", "vs-3", None)],
    "data-absent-reason-unknown-code": [
        ("Observation.dataAbsentReason.coding[0].code", "code-invalid", "not-a-numbr")],
    "gateway-device-extension-valueString": [
        ("Observation.extension[0].valueString", "type-not-allowed", "observation-gatewayDevice"),
        ("Observation.extension[0].value[x]", "cardinality", None)],
    "heart-rate-component-repeats-observation-code": [("Observation", "obs-7", None)],
    "device-duplicate-json-property": [("Device.status", "json", "duplicate")],
    "transaction-entry-without-request": [
        ("Bundle.entry[0]", "transaction-request", None),
        ("Bundle", "bdl-3", None)],
    "transaction-ifnoneexist-literal-plus": [("Bundle.entry[0].request.ifNoneExist", "ifnoneexist-plus", "%2B")],
    "transaction-ifnoneexist-leading-question-mark": [
        ("Bundle.entry[0].request.ifNoneExist", "ifnoneexist", "'?'")],
    "transaction-post-url-wrong-type": [("Bundle.entry[0].request.url", "transaction-url", "Device")],
    "transaction-device-reference-to-observation": [
        ("Bundle.entry[1].resource.device.reference", "reference-target", "Observation")],
    "bundle-dangling-urn-uuid-reference": [
        ("Bundle.entry[0].resource.device.reference", "reference-unresolved", "fullUrl")],
    "bundle-duplicate-fullurl": [
        ("Bundle.entry[1].fullUrl", "bundle-fullurl-duplicate", "entry[0]"),
        ("Bundle", "bdl-7", None)],
    "collection-conditional-subject-reference": [
        ("Bundle.entry[0].resource.subject.reference", "reference-conditional", "collection")],
    "collection-entry-with-request": [
        ("Bundle.entry[0].request", "collection-request", None),
        ("Bundle", "bdl-3", None)],
}


def _names(directory):
    return sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(directory, "*.json")))


def _read(directory, name):
    with open(os.path.join(directory, name + ".json"), encoding="utf-8") as fh:
        return fh.read()


def _errors(result):
    return [i for i in result["issues"] if i["severity"] == "error"]


@pytest.fixture(scope="session")
def validator():
    return vfv.Validator()


# -- accepted shapes ----------------------------------------------------------

def test_case_directories_match_the_tables():
    assert set(_names(VALID_DIR)) == EXPECTED_VALID
    assert set(_names(INVALID_DIR)) == set(EXPECTED_ERRORS)


@pytest.mark.parametrize("name", sorted(EXPECTED_VALID))
def test_valid_case_has_no_errors(validator, name):
    result = validator.validate_text(_read(VALID_DIR, name))
    assert _errors(result) == []
    assert result["valid"] is True


def test_bp_slices_match_with_mdc_and_loinc_side_by_side(validator):
    result = validator.validate_text(_read(VALID_DIR, "bp-observation"))
    assert not [i for i in result["issues"] if i["rule"].startswith("slice")]


def test_unavailable_profiles_are_information_only(validator):
    issues = validator.validate_text(_read(VALID_DIR, "bp-observation"))["issues"]
    info = [i for i in issues if i["rule"] == "profile-unavailable"]
    assert [(i["severity"], i["path"]) for i in info] == [("information", "Observation.meta.profile[0]")]
    assert "PhdCompoundNumericObservation" in info[0]["message"]


def test_narrative_dom6_stays_a_warning(validator):
    issues = validator.validate_text(_read(VALID_DIR, "heart-rate-observation"))["issues"]
    assert {i["severity"] for i in issues if i["rule"] == "dom-6"} == {"warning"}


def test_extensible_binding_miss_is_only_a_warning(validator):
    issues = validator.validate_text(_read(VALID_DIR, "heart-rate-observation"))["issues"]
    hit = [i for i in issues if i["path"] == "Observation.interpretation[0]"]
    assert [(i["severity"], i["rule"]) for i in hit] == [("warning", "binding-extensible")]


def test_vs1_on_datetime_with_offset(validator):
    # fhirpathpy cannot start an expression with $this; the validator binds it via select().
    expr = "($this as dateTime).toString().length() >= 8"
    fn = validator._compile(expr)
    for value, ok in [("2025-06-01T07:30:00+07:00", True), ("2025-06-01", True), ("2025-06", False)]:
        assert fn(vfv.ResourceNode.create_node(value, "dateTime"), {}) == [ok]


def test_validation_does_not_modify_the_resource(validator):
    resource = json.loads(_read(VALID_DIR, "transaction-bundle"))
    before = copy.deepcopy(resource)
    validator.validate(resource)
    assert resource == before


# -- rejected mistakes --------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_invalid_case_reports_exactly_the_expected_errors(validator, name):
    result = validator.validate_text(_read(INVALID_DIR, name))
    assert result["valid"] is False
    got = {(i["path"], i["rule"]) for i in _errors(result)}
    want = {(path, rule) for path, rule, _ in EXPECTED_ERRORS[name]}
    assert got == want, json.dumps(_errors(result), indent=1)
    for path, rule, needle in EXPECTED_ERRORS[name]:
        if needle:
            messages = [i["message"] for i in _errors(result) if (i["path"], i["rule"]) == (path, rule)]
            assert any(needle in m for m in messages), messages


def test_profile_is_inferred_from_loinc_and_category(validator):
    issues = validator.validate_text(_read(INVALID_DIR, "heart-rate-unit-beats-profile-not-claimed"))["issues"]
    inferred = [i for i in issues if i["rule"] == "profile-inferred"]
    assert len(inferred) == 1 and inferred[0]["severity"] == "information"
    assert "StructureDefinition/heartrate" in inferred[0]["message"]


@pytest.mark.parametrize("mutate, path, rule", [
    # wrong LOINC on the systolic component: SystolicBP slice no longer matches
    (lambda r: r["component"][0]["code"]["coding"][1].update(code="8480-7"), "Observation.component",
     "slice-cardinality"),
    # LOINC system typo: BPCode slice (code.coding) no longer matches
    (lambda r: r["code"]["coding"][1].update(system="http://loinc.org/"), "Observation.code.coding",
     "slice-cardinality"),
    (lambda r: r["component"][1]["valueQuantity"].pop("system"), "Observation.component[1].valueQuantity.system",
     "cardinality"),
    (lambda r: r.update(effectiveDateTime="2025-06-01T07:30"), "Observation.effectiveDateTime", "format"),
    (lambda r: r["identifier"][0].update(value=""), "Observation.identifier[0].value", "format"),
    (lambda r: r.update(component=[]), "Observation.component", "json-type"),
    (lambda r: r["extension"][0].update(url="http://hl7.org/fhir/StructureDefinition/observation-gateway"),
     "Observation.extension[0].url", "extension-unknown"),
    (lambda r: r.update(resourceType="Observations"), "resourceType", "resource-type"),
])
def test_mutations_of_the_valid_bp_observation(validator, mutate, path, rule):
    resource = json.loads(_read(VALID_DIR, "bp-observation"))
    mutate(resource)
    assert (path, rule) in {(i["path"], i["rule"]) for i in _errors(validator.validate(resource))}


# -- front ends ---------------------------------------------------------------

def _run(*args, stdin=None):
    return subprocess.run([sys.executable, SCRIPT, *args], input=stdin, capture_output=True, timeout=120)


def test_cli_exit_codes_and_output():
    valid = sorted(glob.glob(os.path.join(VALID_DIR, "*.json")))
    ok = _run(*valid)
    assert ok.returncode == 0, ok.stderr
    assert len(ok.stdout.decode().splitlines()) == len(valid)

    bad = _run("--json", valid[0], os.path.join(INVALID_DIR, "observation-status-done.json"))
    assert bad.returncode == 1
    lines = [json.loads(line) for line in bad.stdout.decode().splitlines()]
    assert [line["valid"] for line in lines] == [True, False]

    missing = _run(os.path.join(HERE, "does-not-exist.json"))
    assert missing.returncode == 2 and b"cannot read" in missing.stderr
    assert _run().returncode == 2


def test_serve_answers_one_line_per_input_line():
    bp = json.dumps(json.loads(_read(VALID_DIR, "bp-observation")))
    bad = json.dumps(json.loads(_read(INVALID_DIR, "observation-status-done")))
    lines = [bp, bad, "{not json", "", "[1, 2]", '{"resourceType": "Observation", "status": NaN}']
    stdin = ("\n".join(lines) + "\n").encode() + b"\xff\xfe\n"
    proc = _run("--serve", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(out) == len(lines) + 1
    assert [o["valid"] for o in out] == [True, False, False, False, False, False, False]
    assert out[2]["issues"][0]["rule"] == "json" and out[-1]["issues"][0]["rule"] == "json"


def test_serve_is_interactive():
    # The Swift tests keep one process open and wait for each answer before sending the next.
    proc = subprocess.Popen([sys.executable, SCRIPT, "--serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for name in ("heart-rate-observation", "observation-status-done"):
            directory = VALID_DIR if name.startswith("heart") else INVALID_DIR
            proc.stdin.write((json.dumps(json.loads(_read(directory, name))) + "\n").encode())
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
            assert answer["valid"] is name.startswith("heart")
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_observation_latency_is_well_under_100ms(validator):
    bp = _read(VALID_DIR, "bp-observation")
    validator.validate_text(bp)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        validator.validate_text(bp)
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.1
