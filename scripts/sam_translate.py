#!/usr/bin/env python3
"""Translate a SAM template to plain CloudFormation (JSON on stdout), offline.

The SAM translator that `sam validate` uses (samtranslator, part of aws-sam-cli), without
AWS credentials: local CodeUri/ContentUri paths become placeholder S3 locations (as `sam
validate` does), the region is AWS_DEFAULT_REGION (default us-east-1), and no managed
policy is looked up (the template names none). Scanners that do not know
AWS::Serverless::* (checkov) read the result.

Usage: sam_translate.py TEMPLATE > translated.json
"""
import json
import os
import sys

import boto3

from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER = "s3://placeholder-bucket/{}.zip"


def translate(path, region):
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    function_globals = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = PLACEHOLDER.format("code")
    for name, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = PLACEHOLDER.format(name)
    translator = Translator(
        managed_policy_map={}, sam_parser=Parser(), boto_session=boto3.session.Session(region_name=region)
    )
    return translator.translate(sam_template=template, parameter_values={}, get_managed_policy_map=lambda: {})


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    json.dump(translate(argv[1], os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
