#!/usr/bin/env bash
# Offline checks of template.yaml (part of `make test`): cfn-lint; `sam validate --lint`;
# `sam validate` with a region (only the SAM translator catches unknown MSK event
# properties); our own IAM, encryption, retention, replay, alarm and dashboard rules
# (scripts/check_template_policy.py); and checkov, an independent scanner, on the
# SAM-translated template against the reviewed skip list checkov-skips.txt
# (scripts/checkov_gate.py). Both gates first prove on templates made bad that they fail.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0 VENV="$venv"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
for tool in cfn-lint sam python "$venv/checkov/bin/checkov"; do
  command -v "$tool" >/dev/null || { echo "check-template: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done
cfn-lint template.yaml
sam validate --lint --template template.yaml
sam validate --template template.yaml
python scripts/check_template_policy.py --self-test template.yaml
python scripts/check_template_policy.py template.yaml
python scripts/checkov_gate.py --self-test template.yaml
python scripts/checkov_gate.py template.yaml
