#!/usr/bin/env python3
"""Our own checks of template.yaml, beyond cfn-lint:

- no IAM statement allows a wildcard action (`*` or `service:*`);
- no statement on S3, Secrets Manager or Kafka resources allows `Resource: "*"`;
- every S3 bucket has default encryption and a full public-access block.

Usage: check_template_policy.py [TEMPLATE ...]   (default: template.yaml)
       check_template_policy.py --self-test       (the checks catch known-bad templates)
"""
import sys

from cfnlint.decode import cfn_yaml

SCOPED_SERVICES = ("s3:", "secretsmanager:", "kafka:", "kafka-cluster:")


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements(node):
    """Every IAM statement in the template (policies, roles, bucket policies), with its path."""
    if isinstance(node, dict):
        if "Statement" in node and ("Version" in node or isinstance(node["Statement"], list)):
            for i, statement in enumerate(as_list(node["Statement"])):
                yield from expand(statement, f"Statement[{i}]")
        for key, value in node.items():
            yield from ((f"{key}.{p}", s) for p, s in statements(value))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from ((f"[{i}].{p}", s) for p, s in statements(value))


def expand(statement, path):
    """A statement, or both branches of a `Fn::If` that yields one."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        _, yes, no = statement["Fn::If"]
        for branch in (yes, no):
            if isinstance(branch, dict) and "Ref" not in branch:
                yield from expand(branch, path)
    elif isinstance(statement, dict):
        yield path, statement


def check(path):
    template = cfn_yaml.load(path)
    problems = []
    for where, statement in statements(template.get("Resources", {})):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
        resources = as_list(statement.get("Resource", []))
        sid = statement.get("Sid", where)
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{sid}: wildcard action {action!r}")
        if "*" in resources:
            for action in actions:
                if action.startswith(SCOPED_SERVICES):
                    problems.append(f"{sid}: {action} on Resource \"*\"")
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        properties = resource.get("Properties", {})
        if not properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration"):
            problems.append(f"{name}: bucket without default encryption")
        block = properties.get("PublicAccessBlockConfiguration", {})
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if block.get(flag) is not True:
                problems.append(f"{name}: public access block without {flag}")
    return problems


BAD = {
    "wildcard action": """
Resources:
  P:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: "s3:*"
            Resource: arn:aws:s3:::b/*
""",
    "on Resource": """
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Version: "2012-10-17", Statement: []}
      Policies:
        - PolicyName: p
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - !If
                - C
                - Effect: Allow
                  Action: [secretsmanager:GetSecretValue]
                  Resource: "*"
                - !Ref AWS::NoValue
""",
    "bucket without default encryption": """
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}
""",
    "public access block without": """
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption: {ServerSideEncryptionConfiguration: [{ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}}]}
""",
}


def self_test():
    import os
    import tempfile

    failures = 0
    for expected, text in BAD.items():
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        problems = check(f.name)
        os.unlink(f.name)
        if not any(expected in p for p in problems):
            print(f"self-test: a template with a {expected} was not flagged: {problems}")
            failures += 1
    print("self-test:", "ok" if not failures else f"{failures} failed")
    return failures


def main(argv):
    if argv[1:] == ["--self-test"]:
        return 1 if self_test() else 0
    status = 0
    for path in argv[1:] or ["template.yaml"]:
        problems = check(path)
        for problem in problems:
            print(f"{path}: {problem}")
        status |= bool(problems)
        if not problems:
            print(f"{path}: IAM and bucket checks passed")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
