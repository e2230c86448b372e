#!/usr/bin/env python3
"""Check device profiles against DeviceProfiles/schema/profile.schema.json.

    check_profiles.py [--schema SCHEMA] [PATH ...]

Each PATH is a profile file or a profile tree (its <vendor>/<model>.json files); the default is the
repository's DeviceProfiles/. Prints one line per problem, `FILE: PATH: MESSAGE`, where PATH is the
JSON path in the loader's notation (`engine.frames.messages[1].name`, `(top level)` for the root).
Exit status: 0 when every file validates, 1 when any does not, 2 for a usage mistake.

The schema is what editors check while a profile is written; VitalGate's loader applies the same rules
and the cross-checks a schema cannot express. This checker keeps the two from drifting apart.
"""

import json
import os
import sys

import jsonschema

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_TREE = os.path.join(REPOSITORY, "DeviceProfiles")
DEFAULT_SCHEMA = os.path.join(DEFAULT_TREE, "schema", "profile.schema.json")


def json_path(parts):
    """`("engine", "frames", "messages", 1, "name")` -> `engine.frames.messages[1].name`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def deepest(error):
    """For oneOf/anyOf failures, the error of the alternative that got furthest, so the path points
    into the section that is wrong rather than at the section as a whole."""
    while error.context:
        error = jsonschema.exceptions.best_match(error.context, key=lambda e: (len(e.absolute_path), -len(e.context or ())))
    return error


def profile_files(tree):
    """`<tree>/<vendor>/<model>.json`, sorted, skipping the schema folder, as the loader does."""
    files = []
    for vendor in sorted(os.listdir(tree)):
        folder = os.path.join(tree, vendor)
        if vendor == "schema" or vendor.startswith(".") or not os.path.isdir(folder):
            continue
        files += [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if name.endswith(".json")]
    return files


def load_validator(schema_path=DEFAULT_SCHEMA):
    with open(schema_path, encoding="utf-8") as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check_file(path, validator):
    """Problems of one profile file as (json path, message) pairs; empty when it validates."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, UnicodeDecodeError) as error:
        return [("(file)", f"cannot read: {error}")]
    except json.JSONDecodeError as error:
        return [("(file)", f"not valid JSON at {error.lineno}:{error.colno}: {error.msg}")]
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        error = deepest(error)
        problems.append((json_path(error.absolute_path), error.message))
    return problems


def report(files, validator, check):
    """Checks each file with `check(file, validator)`, prints `FILE: PATH: MESSAGE` per problem, and returns the exit
    status: 0 when every file validates, 1 when any does not. Shared with the configuration checker."""
    failed = 0
    for file in files:
        problems = check(file, validator)
        failed += bool(problems)
        for where, message in problems:
            print(f"{file}: {where}: {message}")
    return 1 if failed else 0


def within(schema_path, field):
    """Whether a schema error's path is VitalGate's field (the loader's or the parser's) or one of its parents: the
    schema and VitalGate must refuse a broken document at the same place, or the schema's error must be above it."""
    if schema_path in ("(top level)", "(file)"):
        return True
    return field == schema_path or field.startswith(schema_path + ".") or field.startswith(schema_path + "[")


def parse_arguments(arguments, program, default_schema, usage):
    """`[--schema SCHEMA] [PATH ...]` -> (schema, paths), or an exit status when there is nothing to check (after
    printing the help or the mistake). Shared with scripts/config-schema/check_config.py."""
    schema_path = default_schema
    paths = []
    iterator = iter(arguments)
    for argument in iterator:
        if argument == "--schema":
            schema_path = next(iterator, None)
            if schema_path is None:
                print(f"{program}: --schema needs a file", file=sys.stderr)
                return 2
        elif argument in ("-h", "--help"):
            print(usage.strip())
            return 0
        elif argument.startswith("-"):
            print(f"{program}: unknown option {argument}; see --help", file=sys.stderr)
            return 2
        else:
            paths.append(argument)
    return schema_path, paths


def main(arguments):
    parsed = parse_arguments(arguments, "check_profiles.py", DEFAULT_SCHEMA, __doc__)
    if isinstance(parsed, int):
        return parsed
    schema_path, paths = parsed
    validator = load_validator(schema_path)
    files = []
    for path in paths or [DEFAULT_TREE]:
        if os.path.isdir(path):
            files += profile_files(path)
        elif os.path.exists(path):
            files.append(path)
        else:
            print(f"check_profiles.py: {path} does not exist", file=sys.stderr)
            return 2
    return report(files, validator, check_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
