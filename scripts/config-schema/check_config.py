#!/usr/bin/env python3
"""Check VitalGate daemon configuration files against systemd/config.schema.json.

    check_config.py [--schema SCHEMA] FILE ...

Prints one line per problem, `FILE: PATH: MESSAGE`, where PATH is the JSON path in the daemon's notation
(`server.auth.tokenFile`, `household.members[1].label`, `(top level)` for the root). Exit status: 0 when every
file validates, 1 when any does not, 2 for a usage mistake.

The schema is what editors check while the file is written; `vitalgate config check` runs the daemon's own
parser, which also checks what a schema cannot (identifiers, cross-references, secret file modes). Beyond the
schema this checker refuses what the daemon refuses and JSON Schema cannot say: duplicate keys, and integers
written as fractions or exponents (`5.0`, `1e2`).
"""

import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SCHEMA = os.path.join(REPOSITORY, "systemd", "config.schema.json")
EXAMPLE = os.path.join(REPOSITORY, "systemd", "config.example.json")

sys.path.insert(0, os.path.join(REPOSITORY, "scripts", "profile-schema"))
from check_profiles import deepest, json_path, parse_arguments, report  # noqa: E402  (same path notation, error choice and output)


class DuplicateKey(ValueError):
    pass


def refuse_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(f"the key \"{key}\" appears twice in one object")
        seen[key] = value
    return seen


def strict_integer(checker, instance):
    """The daemon reads whole numbers only as written without fraction or exponent; json.load makes those floats."""
    return isinstance(instance, int) and not isinstance(instance, bool)


StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", strict_integer))


def load_validator(schema_path=DEFAULT_SCHEMA):
    with open(schema_path, encoding="utf-8") as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    return StrictValidator(schema)


def load_document(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle, object_pairs_hook=refuse_duplicates)


def check_document(document, validator):
    """Problems of a parsed configuration as (json path, message) pairs; empty when it validates."""
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        error = deepest(error)
        problems.append((json_path(error.absolute_path), error.message))
    return problems


def check_file(path, validator):
    try:
        document = load_document(path)
    except (OSError, UnicodeDecodeError) as error:
        return [("(file)", f"cannot read: {error}")]
    except json.JSONDecodeError as error:
        return [("(file)", f"not valid JSON at {error.lineno}:{error.colno}: {error.msg}")]
    except DuplicateKey as error:
        return [("(file)", str(error))]
    return check_document(document, validator)


def main(arguments):
    parsed = parse_arguments(arguments, "check_config.py", DEFAULT_SCHEMA, __doc__)
    if isinstance(parsed, int):
        return parsed
    schema_path, paths = parsed
    if not paths:
        print("check_config.py: name at least one configuration file; see --help", file=sys.stderr)
        return 2
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        print(f"check_config.py: {missing[0]} does not exist", file=sys.stderr)
        return 2
    return report(paths, load_validator(schema_path), check_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
