#!/usr/bin/env python3
"""Checks schemas/event-v1.schema.json and the C validator against the same examples.

Usage: check_examples.py CONVDIAG_BINARY SOURCE_ROOT

  schemas/examples/valid/*.json    both the schema and `convdiag check` accept each one;
  schemas/examples/invalid/*.json  both reject each one, and the validator's reason contains
                                   the substring that invalid/reasons.tsv gives for the file;
  schemas/examples/beyond-schema/  messages whose verdict depends on their raw bytes or on
                                   configuration, which JSON Schema cannot judge: checked
                                   against the validator only, as beyond-schema/reasons.tsv
                                   says (the schema's own verdict is shown for information).

valid/ and invalid/ hold one JSON document per file, pretty or not; each is rewritten as one
compact line (the form `convdiag check` reads) before it is piped. beyond-schema/ files are
piped byte for byte. Prints one line per check and ends with "N passed, N failed"; exits 1 on
any failure, 77 (skipped) when the Python jsonschema package is missing.
"""

import json
import os
import subprocess
import sys

SCHEMA = "schemas/event-v1.schema.json"
EXAMPLES = "schemas/examples"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
ACCEPTED = "(accepted)"
# The settings the examples assume, whatever the environment says: the defaults.
BASE_OPTIONS = ["--set", "event.max.bytes=65536", "--set", "scenarios.strict=false"]

try:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError, best_match
except ImportError:
    print("SKIP: the Python package jsonschema is not installed")
    sys.exit(77)


def shown(text, limit=160):
    """One printable line: control characters escaped, long text shortened."""
    text = "".join(c if c.isprintable() or c == " " else "\\u%04x" % ord(c) for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def strict_pairs(pairs):
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise ValueError("member %r appears twice" % k)
    return dict(pairs)


def refuse_constant(name):
    raise ValueError("%s is not JSON" % name)


def load_document(path):
    """A valid/ or invalid/ example, read strictly so that its file means one thing."""
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"), object_pairs_hook=strict_pairs,
                          parse_constant=refuse_constant)


def compact(document):
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_manifest(path, min_columns):
    """Rows of a TSV manifest, '#' lines skipped; the second column is a JSON string body."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < min_columns:
                raise ValueError("%s:%d: expected at least %d columns" % (path, number, min_columns))
            if cols[0] in rows:
                raise ValueError("%s:%d: %s listed twice" % (path, number, cols[0]))
            cols[1] = json.loads('"' + cols[1] + '"')
            rows[cols[0]] = cols
    return rows


def clean_env():
    """The environment without convdiag settings, so that only the options below count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONVDIAG_")}


class Runner:
    def __init__(self, convdiag):
        self.convdiag = convdiag
        self.env = clean_env()

    def check(self, lines, options=()):
        """Pipes lines (bytes, one message each) through `convdiag check`; returns one
        (accepted, reason) per line, or raises RuntimeError when the output is not one
        well-formed verdict per line."""
        data = b"".join(line + b"\n" for line in lines)
        proc = subprocess.run([self.convdiag, "check"] + BASE_OPTIONS + list(options),
                              input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=self.env, timeout=60, check=False)
        if proc.returncode not in (0, 1):
            raise RuntimeError("convdiag check exited with %d: %s"
                               % (proc.returncode, shown(proc.stderr.decode("utf-8", "replace"))))
        # Lines end at line feeds only: an echoed value may hold U+2028 or U+0085.
        out = proc.stdout.decode("utf-8").split("\n")
        if out and out[-1] == "":
            out.pop()
        if len(out) != len(lines):
            raise RuntimeError("convdiag check printed %d lines for %d messages"
                               % (len(out), len(lines)))
        verdicts = []
        for number, text in enumerate(out, 1):
            result = json.loads(text)
            if result.get("line") != number or not isinstance(result.get("ok"), bool):
                raise RuntimeError("unexpected output line: %s" % shown(text))
            verdicts.append((result["ok"], result.get("error", "")))
        if (proc.returncode == 0) != all(ok for ok, _ in verdicts):
            raise RuntimeError("exit code %d does not match the verdicts" % proc.returncode)
        return verdicts

    def one(self, line, options=()):
        return self.check([line], options)[0]


class Report:
    def __init__(self):
        self.passed = self.failed = self.known = 0

    def ok(self, name, detail=""):
        self.passed += 1
        print("PASS %s%s" % (name, ": " + detail if detail else ""))

    def fail(self, name, detail):
        self.failed += 1
        print("FAIL %s: %s" % (name, detail))

    def known_defect(self, name, detail):
        self.known += 1
        print("KNOWN DEFECT %s: %s" % (name, detail))


def schema_verdict(validator, document):
    """(accepted, message of the most relevant error)."""
    error = best_match(validator.iter_errors(document))
    if error is None:
        return True, ""
    where = "/".join(str(p) for p in error.absolute_path)
    return False, "%s%s" % (where + ": " if where else "", error.message)


def json_files(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".json"))


def check_schema_itself(schema, report):
    name = "schema " + os.path.basename(SCHEMA)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        report.fail(name, "not a valid JSON Schema 2020-12 document: %s" % shown(e.message))
        return False
    problems = []
    if schema.get("$schema") != DRAFT:
        problems.append("$schema is not %s" % DRAFT)
    for key in ("$id", "title", "description"):
        if not schema.get(key):
            problems.append("%s is missing" % key)
    for prop, sub in schema.get("properties", {}).items():
        if not sub.get("description"):
            problems.append("property %s has no description" % prop)
    if problems:
        report.fail(name, "; ".join(problems))
    else:
        report.ok(name, "valid JSON Schema 2020-12; every property described")
    return True


def check_documents(kind, directory, validator, runner, report, manifest=None):
    names = json_files(directory)
    if manifest is not None:
        for name in sorted(set(manifest) - set(names)):
            report.fail("%s/%s" % (kind, name), "listed in reasons.tsv, but there is no such file")
    for name in names:
        label = "%s/%s" % (kind, name)
        try:
            document = load_document(os.path.join(directory, name))
            line = compact(document)
        except (ValueError, UnicodeError) as e:
            report.fail(label, "cannot be read as one JSON document: %s" % shown(str(e)))
            continue
        schema_ok, schema_why = schema_verdict(validator, document)
        try:
            c_ok, c_why = runner.one(line)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            report.fail(label, shown(str(e)))
            continue
        want_ok = kind == "valid"
        problems = []
        if schema_ok != c_ok:
            problems.append("schema and convdiag disagree")
        if schema_ok != want_ok:
            problems.append("schema %s it (%s)" % ("accepts" if schema_ok else "rejects",
                                                   shown(schema_why) if schema_why else "no error"))
        if c_ok != want_ok:
            problems.append("convdiag %s it%s" % ("accepts" if c_ok else "rejects",
                                                  ": " + shown(c_why) if c_why else ""))
        if not want_ok and manifest is not None:
            if name not in manifest:
                problems.append("not listed in reasons.tsv")
            elif not c_ok and manifest[name][1] not in c_why:
                problems.append("reason %s lacks %s" % (shown(c_why), shown(manifest[name][1])))
        if problems:
            report.fail(label, "; ".join(problems))
        elif want_ok:
            report.ok(label, "accepted by both")
        else:
            report.ok(label, "rejected by both; convdiag: %s" % shown(c_why))


def python_view(data, validator):
    """What a schema validator fed by Python's json module would say of these bytes."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeError):
        return "Python's parser refuses the bytes"
    ok, _ = schema_verdict(validator, document)
    return "schema alone would %s it" % ("accept" if ok else "reject")


def check_beyond(directory, validator, runner, report, manifest):
    names = json_files(directory)
    for name in sorted(set(manifest) - set(names)):
        report.fail("beyond-schema/" + name, "listed in reasons.tsv, but there is no such file")
    for name in names:
        label = "beyond-schema/" + name
        if name not in manifest:
            report.fail(label, "not listed in reasons.tsv")
            continue
        cols = manifest[name] + [""] * (5 - len(manifest[name]))
        expect, why, options, defect = cols[1], cols[2], cols[3].split(), cols[4]
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        if data.endswith(b"\n"):
            data = data[:-1]  # the line feed that ends the line is not part of the message
        if b"\n" in data:
            report.fail(label, "holds more than one line")
            continue
        try:
            c_ok, c_why = runner.one(data, options)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            report.fail(label, shown(str(e)))
            continue
        verdict = "convdiag accepts it" if c_ok else "convdiag rejects it: " + shown(c_why)
        if expect == ACCEPTED:
            met = c_ok
        else:
            met = not c_ok and expect in c_why
        context = "%s (%s; %s)" % (verdict, python_view(data, validator), why)
        if defect:
            if met:
                report.fail(label, "known defect no longer shows (%s); clear the mark in "
                            "reasons.tsv. %s" % (defect, verdict))
            else:
                report.known_defect(label, "%s; %s" % (defect, context))
        elif met:
            report.ok(label, context)
        else:
            report.fail(label, "expected %s; %s" % (
                "acceptance" if expect == ACCEPTED else "a reason with " + shown(expect), context))


def check_known_scenarios(schema, runner, report):
    """Every name in $defs/knownScenario is accepted under the strict setting."""
    label = "schema $defs/knownScenario"
    names = schema.get("$defs", {}).get("knownScenario", {}).get("enum", [])
    if not names or len(set(names)) != len(names):
        report.fail(label, "missing, empty or with repeated names")
        return
    lines = [compact({
        "eventId": "known-%d" % i, "timestamp": "2024-05-14T09:31:02.417Z",
        "organizationId": "2f8e6c1a-9b3d-4e5f-8a7c-1d2e3f4a5b6c",
        "liveWorkItemId": "known-scenarios", "scenario": name, "status": "Started",
        "channelType": "livechat"}) for i, name in enumerate(names)]
    try:
        verdicts = runner.check(lines, ["--set", "scenarios.strict=true"])
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
        report.fail(label, shown(str(e)))
        return
    refused = [n for n, (ok, _) in zip(names, verdicts) if not ok]
    if refused:
        report.fail(label, "refused under the strict setting: %s" % ", ".join(refused))
    else:
        report.ok(label, "all %d names accepted under the strict setting" % len(names))


def main(argv):
    if len(argv) != 3:
        print("usage: %s CONVDIAG_BINARY SOURCE_ROOT" % argv[0], file=sys.stderr)
        return 2
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    runner = Runner(argv[1])
    root = argv[2]
    examples = os.path.join(root, EXAMPLES)
    report = Report()

    with open(os.path.join(root, SCHEMA), encoding="utf-8") as f:
        schema = json.load(f)
    if check_schema_itself(schema, report):
        validator = Draft202012Validator(schema)  # no format checker: the patterns rule
        check_documents("valid", os.path.join(examples, "valid"), validator, runner, report)
        check_documents("invalid", os.path.join(examples, "invalid"), validator, runner, report,
                        read_manifest(os.path.join(examples, "invalid", "reasons.tsv"), 2))
        check_beyond(os.path.join(examples, "beyond-schema"), validator, runner, report,
                     read_manifest(os.path.join(examples, "beyond-schema", "reasons.tsv"), 3))
        check_known_scenarios(schema, runner, report)

    if report.known:
        print("%d known defects, not counted" % report.known)
    print("%d passed, %d failed" % (report.passed, report.failed))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
