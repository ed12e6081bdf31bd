#!/usr/bin/env python3
"""Our own checks of template.yaml, beyond cfn-lint and checkov.

Any template:
- no IAM statement allows a wildcard action (`*` or `service:*`);
- no statement on S3, Secrets Manager or Kafka resources allows `Resource: "*"`;
- every S3 bucket has default encryption and a full public-access block.

The pipeline's template (a template with a DLQ_BUCKET function variable):
- encryption and retention: the dead-letter bucket is SSE-KMS with a bucket key, versioned,
  access-logged, retained, with a lifecycle that expires every dead-letter prefix and
  noncurrent versions; every function logs to a log group of the template with a KMS key,
  a retention and DeletionPolicy Retain; every secret is KMS-encrypted and retained; all of
  them use the key the functions are given (DLQ_KMS_KEY_ID); a key the template creates
  rotates, is retained, and its policy allows no encryption or decryption without a condition;
- the bucket policy denies non-TLS access, object access by other principals, and writes
  naming another key; an S3 endpoint's policy names only the dead-letter bucket;
- replay: reserved concurrency 1, DLQ_BUCKET is the stack's bucket, every S3 statement of its
  role names that bucket, and it may put objects under quarantine/;
- alarms: on every signal the pipeline promises (REQUIRED_ALARMS), each with an action; every
  custom metric an alarm or the dashboard reads is one the code emits (read from the Rust
  sources) in the namespace the functions are given;
- a dashboard showing every alarm and every alarmed metric;
- README.md (beside the template) names every parameter, in backquotes.

Usage: check_template_policy.py [TEMPLATE ...]   (default: template.yaml)
       check_template_policy.py --self-test       (each check fails on a template made bad)
"""
import copy
import json
import os
import re
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
SCOPED_SERVICES = ("s3:", "secretsmanager:", "kafka:", "kafka-cluster:")
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# What the dead-letter bucket holds, by prefix: each must expire.
DEAD_LETTER_PREFIXES = ("dead-letter/", "aws/lambda/", "quarantine/", "archive/")
KMS_CRYPTO = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:*")
# (namespace, metric, function binary or None): what the pipeline must alarm on.
REQUIRED_ALARMS = [
    ("MskRedshiftCdc", "BatchesFailed", "ingest"),
    ("MskRedshiftCdc", "RecordsDeadLettered", "ingest"),
    ("MskRedshiftCdc", "PositionsRegressed", "ingest"),
    ("MskRedshiftCdc", "RecordsStale", "ingest"),
    ("MskRedshiftCdc", "SourceLag", "ingest"),
    ("MskRedshiftCdc", "RecordsQuarantined", "replay"),
    ("AWS/Lambda", "OffsetLag", "ingest"),
    ("AWS/Lambda", "Errors", "ingest"),
    ("AWS/Lambda", "Errors", "replay"),
    ("AWS/Lambda", "Throttles", "ingest"),
    ("AWS/Lambda", "Throttles", "replay"),
    ("AWS/SNS", "NumberOfMessagesPublished", None),
]
# Custom metrics the template may read before the code emits them, with why.
PENDING_METRICS = {}


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


def unwrap(node):
    """Both branches of `Fn::If` (skipping AWS::NoValue), flattened; other values as they are."""
    if isinstance(node, dict) and "Fn::If" in node:
        for branch in node["Fn::If"][1:]:
            if not (isinstance(branch, dict) and branch.get("Ref") == "AWS::NoValue"):
                yield from unwrap(branch)
    else:
        yield node


def refers_to(node, name):
    """Whether a value refers to resource `name` (Ref, GetAtt, or ${name…} in a Sub)."""
    if isinstance(node, dict):
        if node.get("Ref") == name:
            return True
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            return (target[0] if isinstance(target, list) else str(target).split(".")[0]) == name
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            if re.search(r"\$\{" + re.escape(name) + r"[.}]", text):
                return True
        return any(refers_to(v, name) for v in node.values())
    if isinstance(node, list):
        return any(refers_to(v, name) for v in node)
    return False


def generic_problems(template):
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


class Pipeline:
    """The resources of the pipeline's template the checks below look at."""

    def __init__(self, template):
        self.template = template
        self.resources = template.get("Resources", {})
        self.variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        bucket = self.variables.get("DLQ_BUCKET", {})
        self.bucket = bucket.get("Ref") if isinstance(bucket, dict) else None
        self.key = self.variables.get("DLQ_KMS_KEY_ID")
        self.namespace = self.variables.get("METRICS_NAMESPACE")
        self.functions = {
            resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", name): name
            for name, resource in self.resources.items()
            if resource.get("Type") in FUNCTION_TYPES
        }

    def of_type(self, kind):
        return {name: r for name, r in self.resources.items() if r.get("Type") == kind}

    def properties(self, name):
        return self.resources.get(name, {}).get("Properties", {})

    def role_statements(self, role):
        """Allow statements the role gets: inline, and from policies that name it in Roles."""
        found = []
        inline = self.properties(role).get("Policies", [])
        found.extend(s for _, s in statements(inline))
        for resource in self.resources.values():
            if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                if any(refers_to(r, role) for r in as_list(resource.get("Properties", {}).get("Roles", []))):
                    found.extend(s for _, s in statements(resource["Properties"].get("PolicyDocument", {})))
        return [s for s in found if s.get("Effect") == "Allow"]


def emitted_metrics(root=ROOT):
    """Metric names the functions emit, read from the Rust sources."""
    names = set()
    for directory in ("shared/src", "functions"):
        for path in (root / directory).rglob("*.rs"):
            text = path.read_text(encoding="utf-8")
            names.update(re.findall(r'Metric::(?:count|millis)\(\s*"(\w+)"', text))
            names.update(re.findall(r'\(\s*"\w+"\s*,\s*"(Rejected\w+)"\s*\)', text))
    return names


def key_problems(p):
    problems = []
    if p.key is None:
        return ["functions: no DLQ_KMS_KEY_ID (the key the dead letters are written with)"]
    keys = [n for n in p.of_type("AWS::KMS::Key") if refers_to(p.key, n)]
    for name in keys:
        resource = p.resources[name]
        properties = resource.get("Properties", {})
        if properties.get("EnableKeyRotation") is not True:
            problems.append(f"{name}: KMS key without EnableKeyRotation")
        if resource.get("DeletionPolicy") != "Retain":
            problems.append(f"{name}: KMS key not retained (DeletionPolicy Retain)")
        for _, statement in statements(properties.get("KeyPolicy", {})):
            actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
            crypto = [a for a in actions if a.startswith(KMS_CRYPTO)]
            principal = statement.get("Principal")
            if statement.get("Effect") == "Allow" and crypto and not statement.get("Condition"):
                problems.append(f"{name}: key policy {statement.get('Sid')} allows {crypto} without a condition")
            if statement.get("Effect") == "Allow" and (principal == "*" or principal == {"AWS": "*"}):
                problems.append(f"{name}: key policy {statement.get('Sid')} allows Principal \"*\"")
    for name, resource in p.of_type("AWS::Logs::LogGroup").items():
        properties = resource.get("Properties", {})
        if properties.get("KmsKeyId") != p.key:
            problems.append(f"{name}: log group without KmsKeyId (the functions' key)")
        if not properties.get("RetentionInDays"):
            problems.append(f"{name}: log group without RetentionInDays")
        if resource.get("DeletionPolicy") != "Retain":
            problems.append(f"{name}: log group not retained (DeletionPolicy Retain)")
    groups = p.of_type("AWS::Logs::LogGroup")
    for binary, name in p.functions.items():
        group = p.properties(name).get("LoggingConfig", {}).get("LogGroup")
        if not any(refers_to(group, g) for g in groups):
            problems.append(f"{name}: function without LoggingConfig.LogGroup of this template (its logs would be unencrypted)")
    for name, resource in p.of_type("AWS::SecretsManager::Secret").items():
        if resource.get("Properties", {}).get("KmsKeyId") != p.key:
            problems.append(f"{name}: secret without KmsKeyId (the functions' key)")
        if resource.get("DeletionPolicy") != "Retain":
            problems.append(f"{name}: secret not retained (DeletionPolicy Retain)")
    return problems


def bucket_problems(p):
    if p.bucket not in p.resources:
        return [f"DLQ_BUCKET: not a Ref to a bucket of the template ({p.bucket})"]
    name, resource = p.bucket, p.resources[p.bucket]
    properties = resource.get("Properties", {})
    problems = []
    if resource.get("DeletionPolicy") != "Retain":
        problems.append(f"{name}: dead-letter bucket not retained (DeletionPolicy Retain)")
    for rule in properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
        default = rule.get("ServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") != "aws:kms" or default.get("KMSMasterKeyID") != p.key:
            problems.append(f"{name}: dead-letter bucket not SSE-KMS with the functions' key")
        if rule.get("BucketKeyEnabled") is not True:
            problems.append(f"{name}: dead-letter bucket without BucketKeyEnabled")
    if properties.get("VersioningConfiguration", {}).get("Status") != "Enabled":
        problems.append(f"{name}: dead-letter bucket not versioned")
    if not properties.get("LoggingConfiguration", {}).get("DestinationBucketName"):
        problems.append(f"{name}: dead-letter bucket without access logging")
    rules = [r for rule in properties.get("LifecycleConfiguration", {}).get("Rules", []) for r in unwrap(rule)]
    for prefix in DEAD_LETTER_PREFIXES:
        if not any(r.get("Prefix") == prefix and r.get("ExpirationInDays") for r in rules):
            problems.append(f"{name}: no lifecycle expiry of {prefix}")
    if not any(r.get("NoncurrentVersionExpiration") and not r.get("Prefix") for r in rules):
        problems.append(f"{name}: no lifecycle expiry of noncurrent versions")
    policies = [r for r in p.of_type("AWS::S3::BucketPolicy").values() if refers_to(r["Properties"].get("Bucket"), name)]
    denies = [s for r in policies for _, s in statements(r["Properties"]["PolicyDocument"]) if s.get("Effect") == "Deny"]
    if not any("aws:SecureTransport" in json.dumps(s.get("Condition", {})) for s in denies):
        problems.append(f"{name}: bucket policy does not deny non-TLS access")
    if not any(
        "s3:GetObject" in as_list(s.get("Action"))
        and "aws:PrincipalArn" in json.dumps(s.get("Condition", {}).get("ArnNotLike", {}))
        for s in denies
    ):
        problems.append(f"{name}: bucket policy does not deny object access to principals outside the pipeline")
    if not any("s3:x-amz-server-side-encryption-aws-kms-key-id" in json.dumps(s.get("Condition", {})) for s in denies):
        problems.append(f"{name}: bucket policy does not deny writes naming another KMS key")
    for endpoint, resource in p.of_type("AWS::EC2::VPCEndpoint").items():
        for _, statement in statements(resource.get("Properties", {}).get("PolicyDocument", {})):
            if not all(refers_to(r, name) for r in as_list(statement.get("Resource", []))):
                problems.append(f"{endpoint}: endpoint policy names a resource other than the dead-letter bucket")
    return problems


def replay_problems(p):
    name = p.functions.get("replay")
    if name is None:
        return ["no replay function (Metadata.BuildProperties.Binary: replay)"]
    properties = p.properties(name)
    problems = []
    if properties.get("ReservedConcurrentExecutions") != 1:
        problems.append(f"{name}: replay without ReservedConcurrentExecutions: 1 (two replays race)")
    own = properties.get("Environment", {}).get("Variables", {}).get("DLQ_BUCKET", {"Ref": p.bucket})
    if not refers_to(own, p.bucket):
        problems.append(f"{name}: replay's DLQ_BUCKET is not the stack's dead-letter bucket")
    role = properties.get("Role", {})
    role = role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else None
    if role is None:
        return problems + [f"{name}: replay without a role of the template"]
    granted = p.role_statements(role)
    for statement in granted:
        actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
        if any(a.startswith("s3:") for a in actions):
            for resource in as_list(statement.get("Resource", [])):
                if not refers_to(resource, p.bucket):
                    problems.append(f"{role}: replay S3 statement {statement.get('Sid')} names a bucket other than the stack's")
    if not any(
        "s3:PutObject" in as_list(s.get("Action"))
        and any(refers_to(r, p.bucket) and "/quarantine/" in json.dumps(r) for r in as_list(s.get("Resource", [])))
        for s in granted
    ):
        problems.append(f"{role}: replay may not put objects under quarantine/")
    return problems


def alarm_problems(p, emitted):
    problems = []
    alarms = p.of_type("AWS::CloudWatch::Alarm")
    function_of = {v: k for k, v in p.functions.items()}
    seen = set()
    read = set()
    for name, resource in alarms.items():
        properties = resource.get("Properties", {})
        namespace, metric = properties.get("Namespace"), properties.get("MetricName")
        binaries = {
            function_of.get(d.get("Value", {}).get("Ref"))
            for d in properties.get("Dimensions", [])
            if d.get("Name") == "FunctionName" and isinstance(d.get("Value"), dict)
        }
        seen.update((namespace, metric, b) for b in (binaries or {None}))
        if not properties.get("AlarmActions"):
            problems.append(f"{name}: alarm without AlarmActions")
        if namespace not in ("AWS/Lambda", "AWS/SNS"):
            read.add((name, namespace, metric))
    for namespace, metric, binary in REQUIRED_ALARMS:
        if (namespace, metric, binary) not in seen:
            problems.append(f"no alarm on {namespace} {metric}" + (f" of {binary}" if binary else ""))
    dashboards = p.of_type("AWS::CloudWatch::Dashboard")
    if not dashboards:
        problems.append("no dashboard (AWS::CloudWatch::Dashboard)")
    for name, resource in dashboards.items():
        body = resource.get("Properties", {}).get("DashboardBody", {})
        text = body.get("Fn::Sub") if isinstance(body, dict) else body
        text = text if isinstance(text, str) else ""
        try:
            parsed = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))
        except ValueError as e:
            problems.append(f"{name}: dashboard body is not JSON: {e}")
            continue
        shown = set(re.findall(r"\$\{(\w+)\.Arn\}", text))
        for alarm in alarms:
            if alarm not in shown:
                problems.append(f"{name}: dashboard does not show alarm {alarm}")
        metrics = [
            m
            for widget in parsed.get("widgets", [])
            for m in widget.get("properties", {}).get("metrics", [])
            if isinstance(m, list) and len(m) >= 2
        ]
        graphed = {(m[0], m[1]) for m in metrics}
        for namespace, metric, _ in REQUIRED_ALARMS:
            if (namespace, metric) not in graphed:
                problems.append(f"{name}: dashboard does not graph {namespace} {metric}")
        read.update((name, m[0], m[1]) for m in metrics if m[0] not in ("AWS/Lambda", "AWS/SNS"))
    for where, namespace, metric in sorted(read):
        if namespace != p.namespace:
            problems.append(f"{where}: namespace {namespace} is not the functions' METRICS_NAMESPACE {p.namespace}")
        elif metric not in emitted and metric not in PENDING_METRICS:
            problems.append(f"{where}: metric {metric} is not emitted by the functions (shared/src, functions/)")
    return problems


def pipeline_problems(template, emitted):
    p = Pipeline(template)
    if p.bucket is None:
        return []
    return key_problems(p) + bucket_problems(p) + replay_problems(p) + alarm_problems(p, emitted)


def readme_problems(template, readme):
    """Parameters the README does not name (`Name`); none when there is no README."""
    if readme is None:
        return []
    return [
        f"parameter {name} is not documented in README.md"
        for name in template.get("Parameters", {})
        if f"`{name}`" not in readme
    ]


def readme_beside(path):
    readme = Path(path).resolve().parent / "README.md"
    return readme.read_text(encoding="utf-8") if readme.exists() else None


def check(path, emitted=None):
    template = cfn_yaml.load(path)
    return (
        generic_problems(template)
        + pipeline_problems(template, emitted_metrics() if emitted is None else emitted)
        + readme_problems(template, readme_beside(path))
    )


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


def resource(t, name):
    return t["Resources"][name]


def props(t, name):
    return t["Resources"][name]["Properties"]


def statement(t, resource_name, sid):
    """The statement with this Sid in a resource (unwrapping Fn::If), for a mutation to edit."""
    for _, s in statements(t["Resources"][resource_name]):
        if s.get("Sid") == sid:
            return s
    raise KeyError(f"{resource_name}: no statement {sid}")


def drop_statement(t, resource_name, document, sid):
    doc = props(t, resource_name)[document]
    doc["Statement"] = [s for s in doc["Statement"] if not (isinstance(s, dict) and s.get("Sid") == sid)]


def drop_lifecycle_rule(t, rule_id):
    rules = props(t, "DeadLetterBucket")["LifecycleConfiguration"]["Rules"]
    rules[:] = [r for r in rules if not any(x.get("Id") == rule_id for x in unwrap(r))]


def misname_alarm_metric(t):
    props(t, "RecordsDeadLetteredAlarm")["MetricName"] = "RecordDeadLettered"


def dashboard_replace(t, text, by):
    body = props(t, "PipelineDashboard")["DashboardBody"]
    if text not in body["Fn::Sub"]:
        raise KeyError(f"dashboard body has no {text!r}")
    body["Fn::Sub"] = body["Fn::Sub"].replace(text, by)


# What the pipeline checks must catch: each mutation of the real template, and the problem
# it must raise. A check that lets its mutation through fails the self-test.
MUTATIONS = [
    ("log group without KmsKeyId", lambda t: props(t, "IngestLogGroup").pop("KmsKeyId")),
    ("log group without RetentionInDays", lambda t: props(t, "ReplayLogGroup").pop("RetentionInDays")),
    ("log group not retained", lambda t: resource(t, "IngestLogGroup").pop("DeletionPolicy")),
    ("function without LoggingConfig", lambda t: props(t, "ReplayFunction").pop("LoggingConfig")),
    ("secret without KmsKeyId", lambda t: props(t, "MaskingKeySecret").pop("KmsKeyId")),
    ("KMS key without EnableKeyRotation", lambda t: props(t, "DataKey").update(EnableKeyRotation=False)),
    (
        "without a condition",
        lambda t: statement(t, "DataKey", "ReplayReadsAndWritesDeadLettersThroughS3").pop("Condition"),
    ),
    (
        "not SSE-KMS",
        lambda t: props(t, "DeadLetterBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ].update(SSEAlgorithm="AES256"),
    ),
    (
        "without BucketKeyEnabled",
        lambda t: props(t, "DeadLetterBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"][0].pop(
            "BucketKeyEnabled"
        ),
    ),
    ("dead-letter bucket not retained", lambda t: resource(t, "DeadLetterBucket").pop("DeletionPolicy")),
    ("without access logging", lambda t: props(t, "DeadLetterBucket").pop("LoggingConfiguration")),
    ("no lifecycle expiry of dead-letter/", lambda t: drop_lifecycle_rule(t, "expire-dead-letters")),
    ("no lifecycle expiry of quarantine/", lambda t: drop_lifecycle_rule(t, "expire-quarantined-records")),
    ("noncurrent versions", lambda t: drop_lifecycle_rule(t, "expire-noncurrent-versions")),
    (
        "does not deny non-TLS",
        lambda t: drop_statement(t, "DeadLetterBucketPolicy", "PolicyDocument", "DenyInsecureTransport"),
    ),
    (
        "outside the pipeline",
        lambda t: drop_statement(t, "DeadLetterBucketPolicy", "PolicyDocument", "DenyObjectAccessOutsideThePipeline"),
    ),
    (
        "another KMS key",
        lambda t: drop_statement(t, "DeadLetterBucketPolicy", "PolicyDocument", "DenyOtherKmsKey"),
    ),
    (
        "endpoint policy names a resource other",
        lambda t: statement(t, "OnFailureS3Endpoint", "OnFailureDestinationWrites").update(Resource="*"),
    ),
    ("ReservedConcurrentExecutions: 1", lambda t: props(t, "ReplayFunction").pop("ReservedConcurrentExecutions")),
    ("ReservedConcurrentExecutions: 1", lambda t: props(t, "ReplayFunction").update(ReservedConcurrentExecutions=2)),
    (
        "names a bucket other than the stack's",
        lambda t: statement(t, "ReplayAccessPolicy", "ReadAndRemoveDeadLetters")["Resource"].append(
            "arn:aws:s3:::someone-elses-bucket/*"
        ),
    ),
    (
        "replay's DLQ_BUCKET is not",
        lambda t: props(t, "ReplayFunction")["Environment"]["Variables"].update(DLQ_BUCKET="another-bucket"),
    ),
    (
        "may not put objects under quarantine/",
        lambda t: statement(t, "ReplayAccessPolicy", "WriteDeadLettersArchiveAndQuarantine")["Resource"].pop(),
    ),
    ("no alarm on AWS/Lambda OffsetLag", lambda t: t["Resources"].pop("OffsetLagAlarm")),
    ("no alarm on AWS/Lambda Throttles of replay", lambda t: t["Resources"].pop("ReplayThrottlesAlarm")),
    ("no alarm on AWS/SNS NumberOfMessagesPublished", lambda t: t["Resources"].pop("OnFailureBatchAlarm")),
    ("alarm without AlarmActions", lambda t: props(t, "PositionsRegressedAlarm").pop("AlarmActions")),
    ("is not emitted by the functions", misname_alarm_metric),
    ("no dashboard", lambda t: t["Resources"].pop("PipelineDashboard")),
    (
        "parameter UndocumentedThreshold is not documented",
        lambda t: t["Parameters"].update(UndocumentedThreshold={"Type": "Number", "Default": 1}),
    ),
    ("dashboard does not show alarm", lambda t: dashboard_replace(t, '"${SourceLagAlarm.Arn}",', "")),
    (
        "dashboard does not graph AWS/Lambda OffsetLag",
        lambda t: dashboard_replace(t, '"AWS/Lambda", "OffsetLag"', '"AWS/Lambda", "Invocations"'),
    ),
]


def self_test(template_path):
    import tempfile

    failures = 0
    for expected, text in BAD.items():
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        problems = check(f.name, emitted=set())
        os.unlink(f.name)
        if not any(expected in p for p in problems):
            print(f"self-test: a template with a {expected} was not flagged: {problems}")
            failures += 1
    original = cfn_yaml.load(template_path)
    emitted = emitted_metrics()
    readme = readme_beside(template_path) or ""

    def problems(template):
        return pipeline_problems(template, emitted) + readme_problems(template, readme)

    baseline = set(problems(original))
    for expected, mutate in MUTATIONS:
        template = copy.deepcopy(original)
        try:
            mutate(template)
        except (KeyError, IndexError, TypeError) as e:
            print(f"self-test: the mutation for {expected!r} no longer applies to {template_path}: {e!r}")
            failures += 1
            continue
        new = [p for p in problems(template) if p not in baseline]
        if not any(expected in p for p in new):
            print(f"self-test: {template_path} mutated ({expected}) was not flagged: {new}")
            failures += 1
    total = len(BAD) + len(MUTATIONS)
    print("self-test:", f"ok ({total} bad templates caught)" if not failures else f"{failures} of {total} failed")
    return failures


def main(argv):
    if argv[1:2] == ["--self-test"]:
        return 1 if self_test(argv[2] if len(argv) > 2 else "template.yaml") else 0
    status = 0
    emitted = emitted_metrics()
    for name, why in PENDING_METRICS.items():
        if name in emitted:
            print(f"note: {name} is now emitted by the code; remove it from PENDING_METRICS")
    for path in argv[1:] or ["template.yaml"]:
        problems = check(path, emitted)
        for problem in problems:
            print(f"{path}: {problem}")
        status |= bool(problems)
        if not problems:
            print(f"{path}: IAM, encryption, retention, replay, alarm and dashboard checks passed")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
