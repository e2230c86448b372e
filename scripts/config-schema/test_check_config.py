"""The configuration schema against the daemon's parser (`vitalgate config check`).

- systemd/config.example.json and every configuration the repository's harnesses write validate, and the
  daemon's parser accepts them too. The harnesses' configurations are found by reading their source: dict
  literals with a "stateDirectory" key, and `harness.write_config(...)` calls with the members a test then
  sets on the result. An expression this file cannot evaluate fails the test, naming it.
- MISTAKES: both the schema and the parser refuse each, the schema at (or above) the field the parser names.
- PARSER_ONLY: rules a schema cannot express (uniqueness, cross-references, identifier digits): the schema
  accepts, the parser refuses. SCHEMA_STRICTER: where the schema refuses what the parser accepts.
"""

import ast
import atexit
import copy
import json
import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_config  # noqa: E402
from check_profiles import within  # noqa: E402  (check_config put the profile checker on the path)

REPOSITORY = pathlib.Path(check_config.REPOSITORY)
SCRIPTS = REPOSITORY / "scripts"
sys.path.insert(0, str(SCRIPTS / "daemon-harness"))
import harness  # noqa: E402

SERVER_URL = "http://127.0.0.1:8080/fhir"
# Where harness.write_config writes while the configurations are collected; the paths only appear in them.
SCRATCH = tempfile.mkdtemp(prefix="vitalgate-harness-")
atexit.register(shutil.rmtree, SCRATCH, True)
CURRENT_USER = pwd.getpwuid(os.getuid()).pw_name
# The bearer token a harness names (test_daemon's), private to this user as the harness makes it once it may start.
TOKEN = pathlib.Path(SCRATCH) / "token"
TOKEN.write_text("not-a-real-token\n")
TOKEN.chmod(0o600)


# --- the daemon's side ---------------------------------------------------------------------------------------

def vitalgate():
    path = REPOSITORY / ".build" / os.environ.get("VITALGATE_BUILD", "debug") / "vitalgate"
    if not path.exists():
        pytest.fail(f"{path} is missing. Fix: run `swift build` first")
    return path


def parser_check(path):
    """`vitalgate config check FILE`, with this user standing in for the service user (it owns the secrets)."""
    return subprocess.run([str(vitalgate()), "config", "check", str(path), "--service-user", CURRENT_USER],
                          capture_output=True, text=True, timeout=60, check=False)


def write(directory, document, name="config.json"):
    path = pathlib.Path(directory) / name
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    return path


@pytest.fixture(scope="module")
def validator():
    return check_config.load_validator()




# --- the harnesses' configurations, read from their source ---------------------------------------------------

# Values the harnesses only know at run time (a server's address, a temporary directory), by expression.
RUNTIME = {
    "server.base": SERVER_URL, "base_url": SERVER_URL, "arguments.server": SERVER_URL,
    "arguments.reserve_mib": 1, "rng.choice([3, 5, 8])": 3, "batch_size": 5, "extra_server": None,
    "state": f"{SCRATCH}/state", "textfile": f"{SCRATCH}/vitalgate.prom", "profiles": f"{SCRATCH}/profiles",
    "token": str(TOKEN),
    "REPO": str(REPOSITORY), "ROOT": str(REPOSITORY),
}


class Unresolved(Exception):
    pass


class Evaluator:
    """Evaluates the literal part of a harness's configuration code: constants, f-strings, str(), paths."""

    def __init__(self, tree, where):
        self.where = where
        self.names = {}
        for statement in tree.body:  # module constants, where they evaluate
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
                try:
                    self.names[statement.targets[0].id] = self.eval(statement.value)
                except Unresolved:
                    pass

    def eval(self, node):
        source = ast.unparse(node)
        if source in RUNTIME:
            return RUNTIME[source]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Dict):
            result = {}
            for key, value in zip(node.keys, node.values):
                if key is None:
                    result.update(self.eval(value) or {})
                else:
                    result[self.eval(key)] = self.eval(value)
            return result
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.eval(item) for item in node.elts]
        if isinstance(node, ast.JoinedStr):
            return "".join(str(self.eval(part.value)) if isinstance(part, ast.FormattedValue) else part.value for part in node.values)
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.names[node.id]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "harness":
            return getattr(harness, node.attr)
        if isinstance(node, ast.Call) and source.startswith("str(") and len(node.args) == 1:
            return str(self.eval(node.args[0]))
        if isinstance(node, ast.Call) and source.startswith("os.environ.get(") and len(node.args) == 2:
            return self.eval(node.args[1])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return f"{self.eval(node.left)}/{self.eval(node.right)}"
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            for value in node.values:
                result = self.eval(value)
                if result:
                    return result
            return result
        raise Unresolved(f"{self.where}:{node.lineno}: cannot evaluate `{source}`; add it to RUNTIME in {__file__}")


def subscript_chain(node):
    """`config["outbox"]["reservedFreeMiB"]` -> ("config", [key nodes])."""
    keys = []
    while isinstance(node, ast.Subscript):
        keys.insert(0, node.slice)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), keys


def harness_configurations():
    """(id, configuration) for every configuration the scripts write, or (id, Unresolved) to fail on."""
    found = []
    for path in sorted(SCRIPTS.rglob("*.py")):
        if path.parent.name == "config-schema" or ".venv" in path.parts:
            continue
        where = str(path.relative_to(REPOSITORY))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        evaluator = Evaluator(tree, where)
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "stateDirectory" for k in node.keys):
                try:
                    found.append((f"{where}:{node.lineno}", evaluator.eval(node)))
                except Unresolved as error:
                    found.append((f"{where}:{node.lineno}", error))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += written_through_harness(node, evaluator, where)
    return found


def written_through_harness(function, evaluator, where):
    """`harness.write_config(...)` in `function`, then what it sets on `X = json.loads(...)` before writing it back."""
    results = []
    calls = [n for n in ast.walk(function) if isinstance(n, ast.Call) and ast.unparse(n.func) in ("harness.write_config", "write_config")]
    for call in calls:
        try:
            keywords = {k.arg: evaluator.eval(k.value) for k in call.keywords}
            if "state" in keywords:
                keywords["state"] = pathlib.Path(keywords["state"])
            base_url = evaluator.eval(call.args[1])
            scratch = pathlib.Path(SCRATCH) / f"write-config-{call.lineno}"
            scratch.mkdir(parents=True, exist_ok=True)
            configuration = json.loads(harness.write_config(scratch, base_url, **keywords).read_text())
            loaded = {t.id for n in ast.walk(function) if isinstance(n, ast.Assign) and ast.unparse(n.value).startswith("json.loads(")
                      for t in n.targets if isinstance(t, ast.Name)}
            for statement in ast.walk(function):
                if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
                    continue
                name, keys = subscript_chain(statement.targets[0])
                if name in loaded and keys:
                    target = configuration
                    for key in keys[:-1]:
                        target = target[evaluator.eval(key)]
                    target[evaluator.eval(keys[-1])] = evaluator.eval(statement.value)
            results.append((f"{where}:{call.lineno}", configuration))
        except Unresolved as error:
            results.append((f"{where}:{call.lineno}", error))
    return results


HARNESS = harness_configurations()


def test_harness_configurations_were_found():
    ids = [name for name, _ in HARNESS]
    # write_config itself, the daemon, households, metrics and disk-full tests, crash cycles, the device demo
    # and the two Bluetooth VM scenarios.
    for where in ("daemon-harness/harness.py", "daemon-harness/test_households_and_visits.py", "daemon-harness/test_metrics_file.py",
                  "daemon-harness/disk_full_scenario.py", "crash-cycles/crash_cycles.py", "device-demo/demo.py",
                  "bluetooth-vm/pipeline.py", "bluetooth-vm/passkey.py"):
        assert any(where in name for name in ids), f"no configuration found in scripts/{where}: {ids}"
    assert len(ids) >= 12


@pytest.mark.parametrize("name,configuration", HARNESS, ids=[name for name, _ in HARNESS])
def test_harness_configuration_validates(validator, tmp_path, name, configuration):
    if isinstance(configuration, Unresolved):
        pytest.fail(str(configuration))
    assert check_config.check_document(configuration, validator) == []
    result = parser_check(write(tmp_path, configuration))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the example --------------------------------------------------------------------------------------------

def test_schema_is_valid_2020_12():
    with open(check_config.DEFAULT_SCHEMA, encoding="utf-8") as handle:
        schema = json.load(handle)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    check_config.jsonschema.Draft202012Validator.check_schema(schema)


def test_example_validates_and_the_parser_reads_it(validator):
    assert check_config.check_file(check_config.EXAMPLE, validator) == []
    result = subprocess.run([str(vitalgate()), "config", "check", "--json", check_config.EXAMPLE, "--service-user", CURRENT_USER],
                            capture_output=True, text=True, timeout=60, check=False)
    report = json.loads(result.stdout)
    # The parser reads it; only the files it names under /etc/vitalgate may be missing on a build machine.
    assert report["summary"]["householdMembers"] == 2 and report["summary"]["householdDevices"] == 2
    assert [p for p in report["problems"] if not p["problem"].endswith("does not exist")] == []
    assert {f["path"] for f in report["files"] if f["secret"]} == {"/etc/vitalgate/secrets/hub-key.pem", "/etc/vitalgate/secrets/hub-tls.key"}
    for identifier in ("099060000001", "099163000002"):
        assert identifier not in result.stdout + result.stderr


@pytest.fixture()
def base(tmp_path):
    """The example, with its secret and certificate files in tmp_path (mode 0600), which the parser accepts."""
    with open(check_config.EXAMPLE, encoding="utf-8") as handle:
        document = json.load(handle)
    server = document["server"]
    for section, key in (("auth", "privateKeyFile"), ("tls", "caBundle"), ("tls", "clientCertificate"), ("tls", "clientKey")):
        file = tmp_path / os.path.basename(server[section][key])
        file.write_text("placeholder\n")
        file.chmod(0o600)
        server[section][key] = str(file)
    result = parser_check(write(tmp_path, document))
    assert result.returncode == 0, result.stdout + result.stderr
    return document


# --- mistakes -----------------------------------------------------------------------------------------------

def setting(path, value):
    """A change to the configuration: set the member at `path` (dots and [index]), or delete it when value is DELETE."""
    def change(document):
        parts = []
        for part in path.split("."):
            name, _, index = part.partition("[")
            parts.append(name)
            if index:
                parts.append(int(index.rstrip("]")))
        target = document
        for part in parts[:-1]:
            target = target[part]
        if value is DELETE:
            del target[parts[-1]]
        else:
            target[parts[-1]] = copy.deepcopy(value)
    return change


DELETE = object()
CASSETTE = {"profile": "beurer/bm85", "bluetooth": "F1:0B:50:00:00:11"}

# (id, change, the field the parser names)
MISTAKES = [
    ("unknown-top-level", setting("stateDir", "/var/lib/vitalgate"), "stateDir"),
    ("unknown-in-server", setting("server.batchsize", 5), "server.batchsize"),
    ("unknown-in-auth", setting("server.auth.privateKey", "/x"), "server.auth.privateKey"),
    ("auth-member-of-another-method", setting("server.auth.secretFile", "/x"), "server.auth.secretFile"),
    ("unknown-in-member", setting("household.members[0].name", "x"), "household.members[0].name"),
    ("unknown-in-identifier-systems", setting("identifierSystems.passport", "urn:x"), "identifierSystems.passport"),
    ("schema-member", setting("$schema", "/usr/share/vitalgate/config.schema.json"), "$schema"),
    ("batch-size-string", setting("server.batchSize", "50"), "server.batchSize"),
    ("discover-string", setting("devices.discover", "yes"), "devices.discover"),
    ("members-object", setting("household.members", {"label": "ong"}), "household.members"),
    ("ingest-socket-number", setting("ingestSocket", 5), "ingestSocket"),
    ("state-directory-empty", setting("stateDirectory", ""), "stateDirectory"),
    ("client-id-tab", setting("server.auth.clientID", "hub\t1"), "server.auth.clientID"),
    ("tls-null", setting("server.tls", None), "server.tls"),
    ("batch-size-0", setting("server.batchSize", 0), "server.batchSize"),
    ("batch-size-1001", setting("server.batchSize", 1001), "server.batchSize"),
    ("connect-601", setting("server.timeouts.connectSeconds", 601), "server.timeouts.connectSeconds"),
    ("request-0", setting("server.timeouts.requestSeconds", 0), "server.timeouts.requestSeconds"),
    ("retry-initial-9", setting("server.retry.initialMilliseconds", 9), "server.retry.initialMilliseconds"),
    ("retry-maximum-86401", setting("server.retry.maximumSeconds", 86401), "server.retry.maximumSeconds"),
    ("delivered-days-3651", setting("retention.deliveredDays", 3651), "retention.deliveredDays"),
    ("reserved-negative", setting("outbox.reservedFreeMiB", -1), "outbox.reservedFreeMiB"),
    ("bluetooth-timeout-4", setting("bluetooth.connectTimeoutSeconds", 4), "bluetooth.connectTimeoutSeconds"),
    ("heart-rate-window-3601", setting("bluetooth.heartRate.windowSeconds", 3601), "bluetooth.heartRate.windowSeconds"),
    ("metrics-interval-0", setting("metrics.intervalSeconds", 0), "metrics.intervalSeconds"),
    ("huge-integer", setting("server.batchSize", 10 ** 30), "server.batchSize"),
    ("no-server", setting("server", DELETE), ""),
    ("no-base-url", setting("server.baseURL", DELETE), "server"),
    ("base-url-ftp", setting("server.baseURL", "ftp://fhir.example.vn"), "server.baseURL"),
    ("mode-unknown", setting("server.mode", "batch"), "server.mode"),
    ("subject-unknown", setting("server.subjectReference", "logical"), "server.subjectReference"),
    ("method-unknown", setting("server.auth.method", "oauth"), "server.auth.method"),
    ("method-missing", setting("server.auth.method", DELETE), "server.auth"),
    ("bearer-without-token-file", setting("server.auth", {"method": "bearer"}), "server.auth"),
    ("none-with-client-id", setting("server.auth", {"method": "none", "clientID": "x"}), "server.auth.clientID"),
    ("algorithm-es256", setting("server.auth.algorithm", "ES256"), "server.auth.algorithm"),
    ("certificate-without-key", setting("server.tls.clientKey", DELETE), "server.tls"),
    ("owner-and-household", setting("owner", "cccd:099199000001"), "owner"),
    ("owner-bare-number", lambda d: (d.pop("household"), d.update(owner="099199000001")), "owner"),
    ("members-empty", setting("household.members", []), "household.members"),
    ("label-empty", setting("household.members[0].label", ""), "household.members[0].label"),
    ("label-65", setting("household.members[0].label", "o" * 65), "household.members[0].label"),
    ("label-line-break", setting("household.members[0].label", "o\nng"), "household.members[0].label"),
    ("patient-missing", setting("household.members[1].patient", DELETE), "household.members[1]"),
    ("patient-bare-number", setting("household.members[0].patient", "099060000001"), "household.members[0].patient"),
    ("patient-cccd-short", setting("household.members[0].patient", "cccd:09906000001"), "household.members[0].patient"),
    ("patient-bhxh-12", setting("household.members[0].patient", "bhxh:099060000001"), "household.members[0].patient"),
    ("patient-two-bars", setting("household.members[0].patient", "urn:a|b|c"), "household.members[0].patient"),
    ("device-member-and-slots", setting("household.devices[0].member", "ong"), "household.devices[0]"),
    ("device-neither", setting("household.devices[1].member", DELETE), "household.devices[1]"),
    ("device-names-nothing", setting("household.devices[1]", {"member": "ba"}), "household.devices[1]"),
    ("slot-255", setting("household.devices[0].slots", {"255": "ong"}), "household.devices[0].slots.255"),
    ("slot-leading-zero", setting("household.devices[0].slots", {"01": "ong"}), "household.devices[0].slots.01"),
    ("slots-empty", setting("household.devices[0].slots", {}), "household.devices[0].slots"),
    ("slot-label-number", setting("household.devices[0].slots", {"1": 1}), "household.devices[0].slots.1"),
    ("device-bluetooth-short", setting("household.devices[0].bluetooth", "F1:0B:50:00:00"), "household.devices[0].bluetooth"),
    ("device-bluetooth-mixed-groups", setting("household.devices[0].bluetooth", "F10B-50:00:00:11"), "household.devices[0].bluetooth"),
    ("device-system-id-short", setting("household.devices[1].systemID", "00-1C-05-FF-FE-00-00"), "household.devices[1].systemID"),
    ("health-worker-no-bar", setting("healthWorker", {"identifier": "CHW-0042"}), "healthWorker.identifier"),
    ("health-worker-two-bars", setting("healthWorker", {"identifier": "urn:a|b|c"}), "healthWorker.identifier"),
    ("health-worker-empty-value", setting("healthWorker", {"identifier": "urn:a|"}), "healthWorker.identifier"),
    ("health-worker-missing", setting("healthWorker", {}), "healthWorker"),
    ("gateway-mac-bad", setting("gateway", {"ethernetAddress": "not-a-mac"}), "gateway.ethernetAddress"),
    ("metrics-relative", setting("metrics.textfile", "vitalgate.prom"), "metrics.textfile"),
    ("metrics-not-prom", setting("metrics.textfile", "/var/lib/prometheus/node-exporter/vitalgate.txt"), "metrics.textfile"),
    ("metrics-only-suffix", setting("metrics.textfile", "/var/lib/prometheus/.prom"), "metrics.textfile"),
    ("metrics-directory", setting("metrics.textfile", "/var/lib/x.prom/"), "metrics.textfile"),
    ("metrics-without-file", setting("metrics.textfile", DELETE), "metrics"),
    ("adapter-leading-zero", setting("bluetooth.adapter", "hci01"), "bluetooth.adapter"),
    ("adapter-name", setting("bluetooth.adapter", "bluetooth0"), "bluetooth.adapter"),
    ("classic-empty", setting("bluetooth.classic", []), "bluetooth.classic"),
    ("classic-without-profile", setting("bluetooth.classic", [{"address": "00:1A:7D:DA:71:13"}]), "bluetooth.classic[0]"),
    ("classic-bad-address", setting("bluetooth.classic", [{"address": "00:1A", "profile": "contec/cms50d-plus"}]), "bluetooth.classic[0].address"),
    ("serial-bridges-empty", setting("devices.serialBridges", []), "devices.serialBridges"),
    ("serial-bridge-empty-id", setting("devices.serialBridges", [""]), "devices.serialBridges[0]"),
    ("operator-group-empty", setting("control.operatorGroups", [""]), "control.operatorGroups[0]"),
    ("control-socket-empty", setting("control.socket", ""), "control.socket"),
]


@pytest.mark.parametrize("name,change,field", MISTAKES, ids=[case[0] for case in MISTAKES])
def test_both_refuse(validator, tmp_path, base, name, change, field):
    change(base)
    problems = check_config.check_document(base, validator)
    assert problems, f"the schema accepts {name}, which the parser refuses at {field or '(top level)'}"
    assert any(within(path, field) for path, _ in problems), f"the schema refuses {name} at {problems}, not at or above {field}"
    result = parser_check(write(tmp_path, base))
    assert result.returncode == 1, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(str(tmp_path / "config.json") + ":"), first
    if field:
        assert f": {field}: " in first, f"the parser names another field than {field}: {first}"
        # Errors about a value name line and column.
        assert first.split(":")[1].isdigit() and first.split(":")[2].isdigit(), first


# Written as text: json.dumps cannot write these. The plain schema (editors) accepts them; check_config.py and
# the parser refuse.
TEXT_MISTAKES = [
    ("fraction", '"batchSize": 50', '"batchSize": 50.0', "server.batchSize"),
    ("exponent", '"batchSize": 50', '"batchSize": 5e1', "server.batchSize"),
    ("duplicate-key", '"batchSize": 50', '"batchSize": 50, "batchSize": 60', ""),
]


@pytest.mark.parametrize("name,old,new,field", TEXT_MISTAKES, ids=[case[0] for case in TEXT_MISTAKES])
def test_both_refuse_text(validator, tmp_path, base, name, old, new, field):
    text = json.dumps(base, indent=2)
    assert old in text
    path = tmp_path / "config.json"
    path.write_text(text.replace(old, new, 1))
    assert check_config.check_file(str(path), validator) != []
    result = parser_check(path)
    assert result.returncode == 1, result.stdout
    assert f": {field}: " in result.stdout if field else "twice" in result.stdout or "duplicate" in result.stdout.lower(), result.stdout


# What only the parser knows: the schema accepts, the parser refuses.
PARSER_ONLY = [
    ("label-twice", setting("household.members[1].label", "ong"), "household.members[1].label"),
    ("patient-twice", setting("household.members[1].patient", "cccd:099 060 000 001"), "household.members[1].patient"),
    ("member-unknown", setting("household.devices[1].member", "chu"), "household.devices[1].member"),
    ("slot-member-unknown", setting("household.devices[0].slots", {"1": "ong", "2": "chu"}), "household.devices[0].slots"),
    ("device-twice", setting("household.devices[1]", dict(CASSETTE, member="ba")), "household.devices[1]"),
    ("province-code", setting("household.members[1].patient", "cccd:098163000002"), "household.members[1].patient"),
    ("born-in-the-future", setting("household.members[1].patient", "cccd:099399000002"), "household.members[1].patient"),
    ("citizen-system-short", setting("household.members[1].patient", "http://fhir.hl7.org.vn/core/sid/cccd|123"), "household.members[1].patient"),
    ("health-worker-citizen-id", setting("healthWorker", {"identifier": "http://fhir.hl7.org.vn/core/sid/cccd|123"}), "healthWorker.identifier"),
]


@pytest.mark.parametrize("name,change,field", PARSER_ONLY, ids=[case[0] for case in PARSER_ONLY])
def test_only_the_parser_refuses(validator, tmp_path, base, name, change, field):
    change(base)
    assert check_config.check_document(base, validator) == [], \
        f"the schema learned to refuse {name}: move it to MISTAKES"
    result = parser_check(write(tmp_path, base))
    assert result.returncode == 1, result.stdout
    assert f": {field}: " in result.stdout.splitlines()[0], result.stdout
    for identifier in ("099060000001", "099163000002", "098163000002", "099399000002"):
        assert identifier not in result.stdout + result.stderr


def test_schema_stricter_on_decomposed_labels(validator, tmp_path, base):
    """The schema counts code points, the parser characters: 64 "à" written decomposed are 128 code points."""
    label = "a\u0300" * 64
    base["household"]["members"][0]["label"] = label
    base["household"]["devices"][0]["slots"]["1"] = label
    assert check_config.check_document(base, validator) != []
    assert parser_check(write(tmp_path, base)).returncode == 0


def test_secret_mode_only_the_parser_checks(validator, tmp_path, base):
    os.chmod(base["server"]["auth"]["privateKeyFile"], 0o644)
    assert check_config.check_document(base, validator) == []
    result = parser_check(write(tmp_path, base))
    key = base['server']['auth']['privateKeyFile']
    assert result.returncode == 1 and "is open to every user" in result.stdout
    assert f"chown root:vitalgate {key} && chmod 0640 {key}" in result.stdout


# --- the checker's command line -----------------------------------------------------------------------------

def run(*arguments):
    return subprocess.run([sys.executable, os.path.join(HERE, "check_config.py"), *arguments],
                          capture_output=True, text=True, check=False)


def test_command_line(tmp_path, base):
    good = run(check_config.EXAMPLE)
    assert (good.returncode, good.stdout, good.stderr) == (0, "", "")
    base["server"]["batchSize"] = 0
    broken = write(tmp_path, base)
    result = run(check_config.EXAMPLE, str(broken))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{broken}: server.batchSize: 0 is less than the minimum of 1"]
    duplicate = tmp_path / "duplicate.json"
    duplicate.write_text('{"server": {"baseURL": "https://x"}, "server": {}}')
    assert run(str(duplicate)).stdout == f'{duplicate}: (file): the key "server" appears twice in one object\n'
    assert run().returncode == 2
    assert run("/nonexistent.json").returncode == 2
    assert run("--bogus").returncode == 2
