#!/usr/bin/env python3
"""checkov, an independent IaC scanner, on the SAM-translated template (its Fn::ForEach loops
expanded for two topics, sam_translate.CHECK_PARAMETERS, so that each mapping and topic policy
is scanned), against a reviewed skip list (checkov-skips.txt: one accepted finding a line,
`CHECK_ID LOGICAL_ID reason`).

Fails on any finding not in the list, on a listed finding checkov no longer reports (so the
list cannot hide a fixed or renamed resource), and on a list line without a reason.
checkov runs offline (--skip-download) from its own venv: $CHECKOV, default
$VENV/checkov/bin/checkov (scripts/install-deps.sh, requirements-checkov.txt).

Usage: checkov_gate.py TEMPLATE [SKIPS]       (SKIPS default: checkov-skips.txt)
       checkov_gate.py --self-test TEMPLATE   (a finding the list does not accept fails the gate)
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sam_translate import translate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def checkov_command():
    if os.environ.get("CHECKOV"):
        return os.environ["CHECKOV"]
    venv = os.environ.get("VENV") or str(ROOT / ".venv")
    return str(Path(venv) / "checkov" / "bin" / "checkov")


def scan(translated):
    """checkov's failed checks on a CloudFormation template (a dict): {(check id, logical id): name}."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "template.json"
        path.write_text(json.dumps(translated, indent=1))
        command = [checkov_command(), "-f", str(path), "--framework", "cloudformation", "--skip-download",
                   "-o", "json", "--soft-fail"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"checkov-gate: checkov failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = {}
    for r in reports:
        for finding in r.get("results", {}).get("failed_checks", []):
            logical_id = finding["resource"].rsplit(".", 1)[-1]
            failed[(finding["check_id"], logical_id)] = finding.get("check_name", "")
    return failed


def read_skips(path):
    """{(check id, logical id): reason}, and the problems of the file itself."""
    skips, problems = {}, []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or len(parts[2]) < 20:
            problems.append(f"{path}:{number}: want `CHECK_ID LOGICAL_ID reason` with a real reason: {line!r}")
            continue
        check_id, logical_id, reason = parts
        if (check_id, logical_id) in skips:
            problems.append(f"{path}:{number}: {check_id} {logical_id} listed twice")
        skips[(check_id, logical_id)] = reason
    return skips, problems


def gate(translated, skips_path):
    skips, problems = read_skips(skips_path)
    failed = scan(translated)
    for (check_id, logical_id), name in sorted(failed.items()):
        if (check_id, logical_id) not in skips:
            problems.append(f"checkov {check_id} ({name}) fails on {logical_id}: fix it, or add it to {skips_path} with a reason")
    for check_id, logical_id in sorted(skips):
        if (check_id, logical_id) not in failed:
            problems.append(f"{skips_path}: {check_id} {logical_id} is no longer reported by checkov: remove the line")
    return problems, len(failed)


def self_test(template, skips_path):
    """The gate must fail when the template loses something checkov checks (a log group's KMS key)."""
    translated = translate(template, os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    translated["Resources"]["IngestLogGroup"]["Properties"].pop("KmsKeyId")
    problems, _ = gate(translated, skips_path)
    if any("CKV_AWS_158" in p and "IngestLogGroup" in p for p in problems):
        print("checkov-gate self-test: ok (a log group without a KMS key fails the gate)")
        return 0
    print(f"checkov-gate self-test: a log group without a KMS key passed the gate: {problems}")
    return 1


def main(argv):
    if argv[1:2] == ["--self-test"] and len(argv) in (3, 4):
        return self_test(argv[2], argv[3] if len(argv) == 4 else str(ROOT / "checkov-skips.txt"))
    if len(argv) not in (2, 3):
        print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
        return 2
    skips_path = argv[2] if len(argv) == 3 else str(ROOT / "checkov-skips.txt")
    translated = translate(argv[1], os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    problems, accepted = gate(translated, skips_path)
    for problem in problems:
        print(f"checkov-gate: {problem}")
    if not problems:
        print(f"checkov-gate: {argv[1]}: no findings beyond the {accepted} accepted in {skips_path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
