#!/usr/bin/env python3
"""Translate a SAM template to plain CloudFormation (JSON on stdout), offline.

First `Fn::ForEach` (the AWS::LanguageExtensions transform) is expanded for the parameter
values given (`--parameter Topics=a,b`; a parameter without one takes its Default), then the
SAM translator that `sam validate` uses (samtranslator, part of aws-sam-cli) runs without AWS
credentials: local CodeUri/ContentUri paths become placeholder S3 locations (as `sam
validate` does), the region is AWS_DEFAULT_REGION (default us-east-1), and no managed policy
is looked up (the template names none). Scanners that do not know AWS::Serverless::*
(checkov) read the result; `--expand-only` prints the SAM template with the loops expanded
(for `sam validate` and cfn-lint, which then see one resource per topic).

The expansion is ours, not SAM CLI's (`sam validate --language-extensions`): that one resolves
parameters to their defaults inside a loop and flattens a Fn::Sub or Fn::Join holding other
functions into text, so the rules of check_template_policy.py could not read its output.

Usage: sam_translate.py [--expand-only] [--check-parameters | --parameter NAME=VALUE]... TEMPLATE > out.json
       sam_translate.py --self-test      (the expansion on small templates, bad ones included)
"""
import copy
import json
import os
import re
import sys

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
FOREACH = "Fn::ForEach::"
# Two topics, as two routed tables would have: the template checks (check-template.sh,
# check_template_policy.py, checkov_gate.py) expand the loops with these, so that every check
# sees two event source mappings, not a loop.
CHECK_PARAMETERS = {"Topics": "sqlsrv.sampledb.dbo.patientinfo,sqlsrv.sampledb.dbo.visits"}
PLACEHOLDER = "s3://placeholder-bucket/{}.zip"


class ExpansionError(Exception):
    """A Fn::ForEach that cannot be expanded: names the loop and what is wrong."""


def _collection(loop, collection, template, parameters):
    if isinstance(collection, list) and all(isinstance(v, str) for v in collection):
        return list(collection)
    if isinstance(collection, dict) and set(collection) == {"Ref"}:
        name = collection["Ref"]
        declared = template.get("Parameters", {}).get(name)
        if declared is None:
            raise ExpansionError(f"{loop}: its collection refers to {name}, which is not a parameter")
        value = parameters.get(name, declared.get("Default"))
        if value is None:
            raise ExpansionError(f"{loop}: parameter {name} has no value and no Default (pass --parameter {name}=a,b)")
        values = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        if not all(values):
            raise ExpansionError(f"{loop}: parameter {name} has an empty item ({value!r})")
        return values
    raise ExpansionError(f"{loop}: collection must be a list of strings or a Ref to a CommaDelimitedList")


def _substitute(node, identifier, value):
    """The fragment with every ${identifier} and &{identifier} replaced (&{…}: the value
    without its non-alphanumeric characters) and every Ref to the identifier by the value."""
    alnum = re.sub(r"[^0-9A-Za-z]", "", value)

    def text(s):
        return s.replace("${" + identifier + "}", value).replace("&{" + identifier + "}", alnum)

    if isinstance(node, str):
        return text(node)
    if isinstance(node, list):
        return [_substitute(v, identifier, value) for v in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] == identifier:
            return value
        return {text(k): _substitute(v, identifier, value) for k, v in node.items()}
    return node


def _literal_names(node):
    """Ref and Fn::GetAtt whose name is a Fn::Sub with nothing left to substitute, as the
    transform leaves them: {"Ref": {"Fn::Sub": "A"}} becomes {"Ref": "A"}."""
    if isinstance(node, list):
        return [_literal_names(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _literal_names(v) for k, v in node.items()}
    ref = node.get("Ref")
    if set(node) == {"Ref"} and isinstance(ref, dict) and isinstance(ref.get("Fn::Sub"), str) and "${" not in ref["Fn::Sub"]:
        return {"Ref": ref["Fn::Sub"]}
    att = node.get("Fn::GetAtt")
    if set(node) == {"Fn::GetAtt"} and isinstance(att, list) and isinstance(att[0], dict):
        name = att[0].get("Fn::Sub")
        if isinstance(name, str) and "${" not in name:
            return {"Fn::GetAtt": [name] + list(att[1:])}
    return node


def _expand_node(node, template, parameters, where):
    if isinstance(node, list):
        return [_expand_node(v, template, parameters, where) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if not (isinstance(key, str) and key.startswith(FOREACH)):
            out[key] = _expand_node(value, template, parameters, f"{where}.{key}")
            continue
        loop = f"{where}.{key}"
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and isinstance(value[2], dict)):
            raise ExpansionError(f"{loop}: want [Identifier, Collection, {{OutputKey: OutputValue}}]")
        identifier, collection, fragment = value
        for fragment_key in fragment:
            if not fragment_key.startswith(FOREACH) and not any(
                p + identifier + "}" in fragment_key for p in ("${", "&{")
            ):
                raise ExpansionError(f"{loop}: OutputKey {fragment_key} contains neither ${{{identifier}}} nor &{{{identifier}}}")
        for item in _collection(loop, collection, template, parameters):
            expanded = _expand_node(_substitute(copy.deepcopy(fragment), identifier, item), template, parameters, loop)
            for out_key, out_value in expanded.items():
                if out_key in out or out_key in node:
                    raise ExpansionError(f"{loop}: {out_key} is produced twice (two items that differ only in punctuation?)")
                if not re.fullmatch(r"[A-Za-z0-9]{1,255}", out_key) and where in ("Resources", "Outputs", "Conditions"):
                    raise ExpansionError(f"{loop}: {out_key!r} is not a logical ID (alphanumeric, at most 255 characters)")
                out[out_key] = _literal_names(out_value)
    return out


def expand(template, parameters=None):
    """A copy of the template with every Fn::ForEach of Conditions, Resources and Outputs
    expanded (CloudFormation's AWS::LanguageExtensions transform does this server-side) and
    that transform removed from Transform."""
    parameters = dict(parameters or {})
    result = copy.deepcopy(template)
    for section in ("Conditions", "Resources", "Outputs"):
        if section in result:
            result[section] = _expand_node(result[section], template, parameters, section)
    transform = result.get("Transform")
    if isinstance(transform, list):
        rest = [t for t in transform if t != LANGUAGE_EXTENSIONS]
        result["Transform"] = rest[0] if len(rest) == 1 else rest
        if not rest:
            del result["Transform"]
    elif transform == LANGUAGE_EXTENSIONS:
        del result["Transform"]
    return result


def load(path):
    from samtranslator.yaml_helper import yaml_parse

    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def translate_template(template, region):
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(template)
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


def translate(path, region, parameters=None):
    """The template at `path`, loops expanded for `parameters` (default CHECK_PARAMETERS),
    translated to CloudFormation."""
    return translate_template(expand(load(path), CHECK_PARAMETERS if parameters is None else parameters), region)


SELF_TEST_TEMPLATE = {
    "Transform": [LANGUAGE_EXTENSIONS, "AWS::Serverless-2016-10-31"],
    "Parameters": {"Topics": {"Type": "CommaDelimitedList"}},
    "Resources": {
        "Fn::ForEach::Loop": [
            "Topic",
            {"Ref": "Topics"},
            {
                "Policy&{Topic}": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyName": {"Fn::Sub": "p-&{Topic}"}}},
                "Mapping&{Topic}": {
                    "Type": "AWS::Lambda::EventSourceMapping",
                    "Properties": {
                        "Topics": [{"Ref": "Topic"}],
                        "Group": {"Fn::Sub": "${Prefix}-${Topic}"},
                        "Tags": [{"Key": "k", "Value": {"Ref": {"Fn::Sub": "Policy&{Topic}"}}}],
                    },
                },
            },
        ]
    },
}


def self_test():
    """Each expansion rule on a small template, and each refusal: returns the failures."""
    failures = []

    def expect(what, ok):
        if not ok:
            failures.append(what)

    out = expand(SELF_TEST_TEMPLATE, {"Topics": "db.dbo.a,db.dbo.b"})
    resources = out["Resources"]
    expect("one policy and one mapping per item", sorted(resources) == ["Mappingdbdboa", "Mappingdbdbob", "Policydbdboa", "Policydbdbob"])
    mapping = resources.get("Mappingdbdbob", {}).get("Properties", {})
    expect("Ref to the identifier becomes the item", mapping.get("Topics") == ["db.dbo.b"])
    expect("${…} in a Fn::Sub becomes the item", mapping.get("Group") == {"Fn::Sub": "${Prefix}-db.dbo.b"})
    expect("Ref to a Fn::Sub name becomes a plain Ref", mapping.get("Tags", [{}])[0].get("Value") == {"Ref": "Policydbdbob"})
    expect("the transform is removed", out.get("Transform") == "AWS::Serverless-2016-10-31")
    for parameters, refusal in (
        ({"Topics": "a.b,ab"}, "produced twice"),
        ({}, "has no value and no Default"),
        ({"Topics": "a,,b"}, "empty item"),
    ):
        try:
            expand(SELF_TEST_TEMPLATE, parameters)
            failures.append(f"{parameters} was expanded, want a refusal ({refusal})")
        except ExpansionError as e:
            expect(f"{parameters}: {e} (want {refusal})", refusal in str(e))
    unnamed = copy.deepcopy(SELF_TEST_TEMPLATE)
    loop = unnamed["Resources"]["Fn::ForEach::Loop"][2]
    loop["Fixed"] = loop.pop("Policy&{Topic}")
    try:
        expand(unnamed, {"Topics": "a,b"})
        failures.append("an OutputKey without the identifier was expanded")
    except ExpansionError as e:
        expect(f"{e} (want: contains neither)", "contains neither" in str(e))
    return failures


def main(argv):
    usage = "\n".join(__doc__.strip().splitlines()[-2:])
    if argv[1:] == ["--self-test"]:
        failures = self_test()
        for failure in failures:
            print(f"sam_translate self-test: {failure}")
        print("sam_translate self-test:", "ok" if not failures else f"{len(failures)} failed")
        return 1 if failures else 0
    args, parameters, expand_only = argv[1:], {}, False
    while args and args[0].startswith("--"):
        option = args.pop(0)
        if option == "--expand-only":
            expand_only = True
        elif option == "--check-parameters":
            parameters.update(CHECK_PARAMETERS)
        elif option == "--parameter" and args and "=" in args[0]:
            name, value = args.pop(0).split("=", 1)
            parameters[name] = value
        else:
            print(f"sam_translate: bad option {option!r}\n{usage}", file=sys.stderr)
            return 2
    if len(args) != 1:
        print(f"sam_translate: want one TEMPLATE\n{usage}", file=sys.stderr)
        return 2
    try:
        template = expand(load(args[0]), parameters)
        result = template if expand_only else translate_template(template, os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    except ExpansionError as e:
        print(f"sam_translate: {args[0]}: {e}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
