#!/usr/bin/env bash
# Offline checks of template.yaml (part of `make test`). The template makes one event source
# mapping per topic with Fn::ForEach (AWS::LanguageExtensions), so the checks run on it as
# written where the tool expands loops itself (cfn-lint; SAM CLI's own expansion, which
# `sam build` uses) and otherwise on it expanded for two topics by scripts/sam_translate.py
# (sam_translate.CHECK_PARAMETERS): cfn-lint and `sam validate --lint` and `sam validate` with
# a region (the SAM translator) on the expansion; our own IAM, encryption, retention, replay,
# alarm, dashboard and mapping rules (scripts/check_template_policy.py, which expands the same
# way and requires one mapping per topic); and checkov, an independent scanner, on the
# SAM-translated expansion against the reviewed skip list checkov-skips.txt
# (scripts/checkov_gate.py). The expansion, our rules and the checkov gate first prove on
# templates made bad that they fail.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0 VENV="$venv"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
for tool in cfn-lint sam python "$venv/checkov/bin/checkov"; do
  command -v "$tool" >/dev/null || { echo "check-template: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done
step() { echo "check-template: $*"; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step "Fn::ForEach expansion: self-test, then template.yaml for two topics"
python scripts/sam_translate.py --self-test
expanded="$tmp/template-two-topics.json"
python scripts/sam_translate.py --expand-only --check-parameters template.yaml >"$expanded"
mappings=$(python -c 'import json, sys; r = json.load(open(sys.argv[1]))["Resources"]; print(sum(v["Type"] == "AWS::Lambda::EventSourceMapping" for v in r.values()))' "$expanded")
[ "$mappings" = 2 ] || { echo "check-template: the two-topic expansion has $mappings event source mappings, not 2" >&2; exit 1; }

step "cfn-lint (as written, and expanded)"
cfn-lint template.yaml
cfn-lint "$expanded"
step "sam validate --lint and the SAM translator (expanded); SAM CLI's --language-extensions path (as written)"
sam validate --lint --template "$expanded"
sam validate --template "$expanded"
sam validate --language-extensions --template template.yaml
step "our rules (scripts/check_template_policy.py)"
python scripts/check_template_policy.py --self-test template.yaml
python scripts/check_template_policy.py template.yaml
step "checkov (scripts/checkov_gate.py)"
python scripts/checkov_gate.py --self-test template.yaml
python scripts/checkov_gate.py template.yaml
