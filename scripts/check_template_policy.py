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
  under any prefix the functions write that ask for SSE-S3 or name another key; an S3
  endpoint's policy names only the dead-letter bucket;
- replay: reserved concurrency 1, DLQ_BUCKET is the stack's bucket, every S3 statement of its
  role names that bucket, and it may put objects under quarantine/;
- the functions put and delete objects only under their own prefixes (FUNCTION_PREFIXES), and
  both may put and delete under the staging prefix (STAGING_PREFIX), which expires within
  STAGING_MAX_DAYS, noncurrent versions included;
- the COPY role (REDSHIFT_COPY_ROLE_ARN) is set; a role the template creates is trusted by
  Redshift only and may only read staged objects (s3:GetObject under the staging prefix,
  s3:ListBucket with an s3:prefix under it, kms:Decrypt through S3); the bucket policy lets it
  read and denies it writing, deleting, reading every dead-letter prefix and listing outside
  the staging prefix (a role of yours may allow more); a key the template creates lets it
  decrypt and nothing else;
- alarms: on every signal the pipeline promises (REQUIRED_ALARMS), each with an action; every
  custom metric an alarm or the dashboard reads is one the code emits (read from the Rust
  sources) in the namespace the functions are given;
- a dashboard showing every alarm and every alarmed metric;
- event source mappings (the template is checked with its Fn::ForEach loops expanded for two
  topics, sam_translate.CHECK_PARAMETERS): exactly one mapping of the ingest function per
  topic, each with its own consumer group, Enabled and StartingPosition from the parameters,
  the dead-letter bucket as on-failure destination, bounded retries that never drop a record
  for age; the ingest role may read each topic and use each group by name (no wildcard), and
  each mapping refers to the policy that grants its topic (so it is created after it);
- README.md (beside the template) names every parameter, in backquotes.

Usage: check_template_policy.py [TEMPLATE ...]   (default: template.yaml)
       check_template_policy.py --self-test       (each check fails on a template made bad)

Mutations of the self-test apply to the template as written (loops and all), which is then
expanded and checked, as CloudFormation would expand it.
"""
import copy
import fnmatch
import json
import os
import re
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sam_translate import CHECK_PARAMETERS, ExpansionError  # noqa: E402
from sam_translate import expand as expand_loops  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The topics the loops are expanded with: two, so that a rule that holds for "the" mapping
# but not for each one fails.
TOPICS = CHECK_PARAMETERS["Topics"].split(",")
SCOPED_SERVICES = ("s3:", "secretsmanager:", "kafka:", "kafka-cluster:", "glue:")
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# What the dead-letter bucket holds, by prefix: each must expire.
DEAD_LETTER_PREFIXES = ("dead-letter/", "aws/lambda/", "quarantine/", "archive/")
# What each function may put and delete, by prefix of the dead-letter bucket; the staging
# prefix (STAGING_PREFIX) is allowed to both, for both. Least privilege, held here so that a
# widening is a reviewed change.
FUNCTION_PREFIXES = {
    "ingest": {"s3:PutObject": ("dead-letter/", "aws/lambda/"), "s3:DeleteObject": ("dead-letter/",)},
    "replay": {
        "s3:PutObject": ("dead-letter/", "archive/", "quarantine/"),
        "s3:DeleteObject": ("dead-letter/", "aws/lambda/", "quarantine/"),
    },
}
# A staged COPY object outlives its transaction only through a failure: the lifecycle removes
# it, and the noncurrent version its delete leaves, within this many days.
STAGING_MAX_DAYS = 1
# The only principals that may assume a COPY role the template creates.
REDSHIFT_SERVICES = ("redshift.amazonaws.com", "redshift-serverless.amazonaws.com")
KMS_CRYPTO = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:*")
# (namespace, metric, function binary or None): what the pipeline must alarm on.
REQUIRED_ALARMS = [
    ("MskRedshiftCdc", "BatchesFailed", "ingest"),
    ("MskRedshiftCdc", "TargetTableMissing", "ingest"),
    ("MskRedshiftCdc", "TargetMetadataColumnsMissing", "ingest"),
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


def contains(node, target):
    """Whether `target` (a value of the template) occurs in `node`."""
    if node == target:
        return True
    if isinstance(node, dict):
        return any(contains(v, target) for v in node.values())
    if isinstance(node, list):
        return any(contains(v, target) for v in node)
    return False


def allows(statement, action):
    """Whether a statement's Action (wildcards included; either branch of an Fn::If) covers
    `action`."""
    actions = [x for a in unwrap(statement.get("Action", [])) for x in as_list(a)]
    return any(isinstance(a, str) and fnmatch.fnmatchcase(action, a) for a in actions)


def object_prefix(resource, bucket):
    """The key prefix of an object ARN `${<bucket>.Arn}/<prefix>*` ("" for every object), or None."""
    text = resource.get("Fn::Sub") if isinstance(resource, dict) else None
    text = text[0] if isinstance(text, list) else text
    match = re.fullmatch(r"\$\{" + re.escape(str(bucket)) + r"\.Arn\}/(.*)\*", text) if isinstance(text, str) else None
    return match.group(1) if match else None


def days(value):
    return value if isinstance(value, int) else int(value) if isinstance(value, str) and value.isdigit() else None


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
        self.staging = str(self.variables.get("STAGING_PREFIX", "staging")).strip("/") + "/"
        self.copy_role = self.variables.get("REDSHIFT_COPY_ROLE_ARN")
        self.functions = {
            resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", name): name
            for name, resource in self.resources.items()
            if resource.get("Type") in FUNCTION_TYPES
        }

    def of_type(self, kind):
        return {name: r for name, r in self.resources.items() if r.get("Type") == kind}

    def properties(self, name):
        return self.resources.get(name, {}).get("Properties", {})

    def role_of(self, binary):
        """The role (a GetAtt of the template) of the function built from `binary`, or None."""
        role = self.properties(self.functions.get(binary)).get("Role", {})
        return role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else None

    def bucket_statements(self, effect):
        """The statements of the dead-letter bucket's policies with this Effect."""
        policies = [
            r for r in self.of_type("AWS::S3::BucketPolicy").values() if refers_to(r["Properties"].get("Bucket"), self.bucket)
        ]
        return [s for r in policies for _, s in statements(r["Properties"]["PolicyDocument"]) if s.get("Effect") == effect]

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
    staged = [r for r in rules if r.get("Prefix") == p.staging]
    if not any((days(r.get("ExpirationInDays")) or STAGING_MAX_DAYS + 1) <= STAGING_MAX_DAYS for r in staged):
        problems.append(f"{name}: no lifecycle expiry of {p.staging} within {STAGING_MAX_DAYS} day(s)")
    if not any(
        (days(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")) or STAGING_MAX_DAYS + 1) <= STAGING_MAX_DAYS
        for r in staged
    ):
        problems.append(f"{name}: noncurrent versions of {p.staging} kept longer than {STAGING_MAX_DAYS} day(s)")
    denies = p.bucket_statements("Deny")
    if not any("aws:SecureTransport" in json.dumps(s.get("Condition", {})) for s in denies):
        problems.append(f"{name}: bucket policy does not deny non-TLS access")
    if not any(
        "s3:GetObject" in as_list(s.get("Action"))
        and "aws:PrincipalArn" in json.dumps(s.get("Condition", {}).get("ArnNotLike", {}))
        for s in denies
    ):
        problems.append(f"{name}: bucket policy does not deny object access to principals outside the pipeline")
    # Every prefix the functions write with their own headers (the on-failure prefix is the
    # event source mapping's: it gets the bucket's default).
    written = {x for actions in FUNCTION_PREFIXES.values() for x in actions["s3:PutObject"]} - {"aws/lambda/"}
    for prefix in sorted(written | {p.staging}):
        for header, what in (
            ("s3:x-amz-server-side-encryption", "asking for another encryption than SSE-KMS"),
            ("s3:x-amz-server-side-encryption-aws-kms-key-id", "naming another KMS key"),
        ):
            if not any(
                allows(s, "s3:PutObject")
                and header in s.get("Condition", {}).get("StringNotEquals", {})
                and any(object_prefix(r, name) in ("", prefix) for r in as_list(s.get("Resource", [])))
                for s in denies
            ):
                problems.append(f"{name}: bucket policy does not deny writes under {prefix} {what}")
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
    role = p.role_of("replay")
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


def function_write_problems(p):
    """Each function puts and deletes objects under its own prefixes only, the staging prefix
    included (load = "copy" stages there)."""
    problems = []
    for binary, actions in FUNCTION_PREFIXES.items():
        role = p.role_of(binary)
        if role is None:
            continue
        granted = p.role_statements(role)
        for action, own in actions.items():
            allowed = own + (p.staging,)
            reached = set()
            for statement in (s for s in granted if allows(s, action)):
                for resource in as_list(statement.get("Resource", [])):
                    prefix = object_prefix(resource, p.bucket)
                    if prefix in allowed:
                        reached.add(prefix)
                    else:
                        problems.append(
                            f"{role}: {binary} statement {statement.get('Sid')} allows {action} outside its prefixes"
                            f" ({', '.join(allowed)})"
                        )
            if p.staging not in reached:
                problems.append(f"{role}: {binary} may not {action} under {p.staging} (load = \"copy\" stages there)")
    return problems


def copy_role_problems(p):
    """The role Redshift assumes for COPY: set, reading staged objects only."""
    if p.copy_role is None:
        return ["functions: no REDSHIFT_COPY_ROLE_ARN (tables load by COPY by default; their cold start refuses)"]
    problems = []
    for role in [n for n in p.of_type("AWS::IAM::Role") if refers_to(p.copy_role, n)]:
        trust = p.properties(role).get("AssumeRolePolicyDocument", {})
        for _, statement in statements(trust):
            principal = statement.get("Principal", {})
            principal = principal if isinstance(principal, dict) else {"*": principal}
            trusted = [str(k) for k in principal if k != "Service"]
            trusted += [v for b in unwrap(principal.get("Service", [])) for v in as_list(b) if v not in REDSHIFT_SERVICES]
            if trusted:
                problems.append(f"{role}: COPY role trusted by {trusted} (Redshift only: {', '.join(REDSHIFT_SERVICES)})")
        for statement in p.role_statements(role):
            sid = statement.get("Sid")
            for action in [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]:
                resources = as_list(statement.get("Resource", []))
                condition = statement.get("Condition", {})
                if action == "s3:GetObject":
                    if any(object_prefix(r, p.bucket) != p.staging for r in resources):
                        problems.append(f"{role}: COPY role statement {sid} reads outside {p.staging}")
                elif action == "s3:ListBucket":
                    listed = [
                        v for op in ("StringLike", "StringEquals") for v in as_list(condition.get(op, {}).get("s3:prefix", []))
                    ]
                    if not listed or any(not str(v).startswith(p.staging) for v in listed):
                        problems.append(f"{role}: COPY role statement {sid} lists outside {p.staging}")
                elif action == "kms:Decrypt":
                    if "s3." not in json.dumps(condition.get("StringEquals", {}).get("kms:ViaService")):
                        problems.append(f"{role}: COPY role statement {sid} decrypts other than through S3 (kms:ViaService)")
                else:
                    problems.append(f"{role}: COPY role statement {sid} allows {action} (it only reads staged objects)")
    denies = p.bucket_statements("Deny")
    if not any(
        allows(s, "s3:GetObject") and contains(s.get("Condition", {}).get("ArnNotLike", {}), p.copy_role) for s in denies
    ):
        problems.append(f"{p.bucket}: bucket policy does not name the COPY role among the principals that may read objects")
    confining = [s for s in denies if contains(s.get("Condition", {}).get("ArnEquals", {}), p.copy_role)]
    for action, prefixes in (
        ("s3:GetObject", DEAD_LETTER_PREFIXES),
        ("s3:PutObject", ("",)),
        ("s3:DeleteObject", ("",)),
        ("s3:DeleteObjectVersion", ("",)),
    ):
        for prefix in prefixes:
            if not any(
                allows(s, action) and any(object_prefix(r, p.bucket) in ("", prefix) for r in as_list(s.get("Resource", [])))
                for s in confining
            ):
                where = prefix or "any prefix"
                problems.append(f"{p.bucket}: bucket policy does not deny the COPY role {action} under {where}")
    if not any(
        allows(s, "s3:ListBucket")
        and as_list(s.get("Condition", {}).get("StringNotLike", {}).get("s3:prefix")) == [p.staging + "*"]
        for s in confining
    ):
        problems.append(f"{p.bucket}: bucket policy does not deny the COPY role listing outside {p.staging}")
    for key in [n for n in p.of_type("AWS::KMS::Key") if refers_to(p.key, n)]:
        granted = [
            s
            for _, s in statements(p.properties(key).get("KeyPolicy", {}))
            if s.get("Effect") == "Allow" and contains(s.get("Condition", {}), p.copy_role)
        ]
        if not any(allows(s, "kms:Decrypt") and "kms:ViaService" in json.dumps(s.get("Condition")) for s in granted):
            problems.append(f"{key}: key policy does not let the COPY role decrypt staged objects through S3")
        for statement in granted:
            extra = [a for a in as_list(statement.get("Action", [])) if a != "kms:Decrypt"]
            if extra:
                problems.append(f"{key}: key policy {statement.get('Sid')} gives the COPY role {extra} (it only decrypts)")
    return problems


def alarm_problems(p, emitted):
    problems = []
    alarms = p.of_type("AWS::CloudWatch::Alarm")
    function_of = {v: k for k, v in p.functions.items()}
    seen = set()
    read = set()
    for name, resource in alarms.items():
        properties = resource.get("Properties", {})
        # A plain alarm names its metric; a metric-math alarm reads each of its `Metrics`.
        watched = [properties] + [
            m.get("MetricStat", {}).get("Metric", {}) for m in properties.get("Metrics", []) if "MetricStat" in m
        ]
        for metric_of in watched if properties.get("Metrics") else [properties]:
            namespace, metric = metric_of.get("Namespace"), metric_of.get("MetricName")
            if namespace is None and metric is None:
                continue
            binaries = {
                function_of.get(d.get("Value", {}).get("Ref"))
                for d in metric_of.get("Dimensions", [])
                if d.get("Name") == "FunctionName" and isinstance(d.get("Value"), dict)
            }
            seen.update((namespace, metric, b) for b in (binaries or {None}))
            if namespace not in ("AWS/Lambda", "AWS/SNS"):
                read.add((name, namespace, metric))
        if not properties.get("AlarmActions"):
            problems.append(f"{name}: alarm without AlarmActions")
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


def text_of(node):
    """The text of a plain string or of a Fn::Sub (either form), else None."""
    if isinstance(node, str):
        return node
    sub = node.get("Fn::Sub") if isinstance(node, dict) else None
    sub = sub[0] if isinstance(sub, list) and sub else sub
    return sub if isinstance(sub, str) else None


def mappings_of(p, binary):
    """The event source mappings (name → properties) that invoke the function built from `binary`."""
    function = p.functions.get(binary)
    return {
        name: r.get("Properties", {})
        for name, r in p.of_type("AWS::Lambda::EventSourceMapping").items()
        if function and refers_to(r.get("Properties", {}).get("FunctionName"), function)
    }


def mapping_problems(p, topics=TOPICS):
    """One mapping of the ingest function per topic, configured alike, each topic and consumer
    group readable by the ingest role and by name only."""
    mappings = mappings_of(p, "ingest")
    problems = []
    if len(mappings) != len(topics):
        problems.append(
            f"{len(mappings)} event source mapping(s) of the ingest function for {len(topics)} topics ({', '.join(topics)}):"
            " want one per topic (Fn::ForEach over Topics)"
        )
    role = p.role_of("ingest")
    granted = p.role_statements(role) if role else []
    policies = {
        name: r
        for name, r in p.resources.items()
        if r.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        and any(refers_to(x, role) for x in as_list(r.get("Properties", {}).get("Roles", [])))
    }

    def resources_allowed(action):
        return [text_of(r) or "" for s in granted if allows(s, action) for r in as_list(s.get("Resource", []))]

    for action, kind in (("kafka-cluster:ReadData", ":topic/"), ("kafka-cluster:AlterGroup", ":group/")):
        for text in resources_allowed(action):
            if kind in text and (text.endswith("*") or text.endswith("/")):
                problems.append(f"{role}: ingest may {action} on {text!r}: name each topic and group, no wildcard")
    groups = {}
    for topic in topics:
        consuming = [n for n, m in mappings.items() if as_list(m.get("Topics", [])) == [topic]]
        if len(consuming) != 1:
            problems.append(f"topic {topic} is consumed by {len(consuming)} event source mappings of ingest, not 1")
            continue
        name = consuming[0]
        m = mappings[name]
        group = json.dumps(m.get("AmazonManagedKafkaEventSourceConfig", {}).get("ConsumerGroupId"), sort_keys=True)
        if group in groups:
            problems.append(f"{name}: consumer group {group} is {groups[group]}'s too (Lambda wants one per mapping)")
        groups[group] = name
        group_text = text_of(m.get("AmazonManagedKafkaEventSourceConfig", {}).get("ConsumerGroupId"))
        for prop, parameter in (("Enabled", "Enabled"), ("StartingPosition", "StartingPosition")):
            if m.get(prop) != {"Ref": parameter}:
                problems.append(f"{name}: {prop} is not the {parameter} parameter (deploy disabled, then enable)")
        if not refers_to(m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"), p.bucket):
            problems.append(f"{name}: on-failure destination is not the dead-letter bucket (replay reads aws/lambda/ there)")
        if m.get("MaximumRecordAgeInSeconds") != -1:
            problems.append(f"{name}: MaximumRecordAgeInSeconds is not -1 (a record must never be dropped for age)")
        if not isinstance(m.get("MaximumRetryAttempts"), int) or m["MaximumRetryAttempts"] < 0:
            problems.append(f"{name}: MaximumRetryAttempts is not bounded (a stuck batch must reach the on-failure destination)")
        reads = [t for t in resources_allowed("kafka-cluster:ReadData") if ":topic/" in t and t.endswith("/" + topic)]
        if not reads:
            problems.append(f"{role}: ingest may not kafka-cluster:ReadData on topic {topic}")
        uses = [t for t in resources_allowed("kafka-cluster:AlterGroup") if group_text and t.endswith("/" + group_text)]
        if not uses:
            problems.append(f"{role}: ingest may not kafka-cluster:AlterGroup on the consumer group of {name}")
        granting = [
            n
            for n, r in policies.items()
            for _, st in statements(r.get("Properties", {}).get("PolicyDocument", {}))
            if allows(st, "kafka-cluster:ReadData")
            and any((text_of(x) or "").endswith("/" + topic) for x in as_list(st.get("Resource", [])))
        ]
        if granting and not any(refers_to(m, g) or g in as_list(p.resources[name].get("DependsOn", [])) for g in granting):
            problems.append(f"{name}: does not refer to {granting[0]}, which grants its topic (it could poll before the grant)")
    return problems


def registry_problems(p):
    """Avro records: a mapping that validates against a schema registry itself delivers
    SOURCE (the functions refuse Lambda's JSON form of an Avro record: registry_json_format);
    both functions can read the Glue registry's schema versions (replay reads dead letters of
    Avro records too), and no other registry."""
    problems = []
    for name, m in mappings_of(p, "ingest").items():
        config = m.get("AmazonManagedKafkaEventSourceConfig", {}).get("SchemaRegistryConfig")
        for branch in unwrap(config) if config is not None else []:
            if isinstance(branch, dict) and branch.get("EventRecordFormat") != "SOURCE":
                problems.append(f"{name}: SchemaRegistryConfig EventRecordFormat is not SOURCE (JSON loses the Connect types)")
    for binary in ("ingest", "replay"):
        role = p.role_of(binary)
        granted = p.role_statements(role) if role else []
        reads = [s for s in granted if allows(s, "glue:GetSchemaVersion")]
        if not reads:
            problems.append(f"{role}: {binary} may not glue:GetSchemaVersion (SchemaRegistry glue)")
        for s in reads:
            for r in as_list(s.get("Resource", [])):
                text = text_of(r) or ""
                if ":registry/" not in text and ":schema/" not in text:
                    problems.append(f"{role}: {binary} may glue:GetSchemaVersion on {text!r}, not GlueRegistryName's schemas")
                elif ":registry/*" in text or ":schema/*" in text:
                    problems.append(f"{role}: {binary} may read every Glue registry ({text!r}): name GlueRegistryName")
    return problems


def pipeline_problems(template, emitted):
    p = Pipeline(template)
    if p.bucket is None:
        return []
    return (
        key_problems(p)
        + mapping_problems(p)
        + bucket_problems(p)
        + replay_problems(p)
        + function_write_problems(p)
        + copy_role_problems(p)
        + alarm_problems(p, emitted)
        + registry_problems(p)
    )


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


def load_expanded(path):
    """The template with its Fn::ForEach loops expanded for TOPICS."""
    return expand_loops(cfn_yaml.load(path), CHECK_PARAMETERS)


def check(path, emitted=None):
    try:
        template = load_expanded(path)
    except ExpansionError as e:
        return [f"Fn::ForEach: {e}"]
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
    "contains neither ${Topic} nor &{Topic}": """
Parameters:
  Topics: {Type: CommaDelimitedList, Default: "a,b"}
Resources:
  Fn::ForEach::Loop:
    - Topic
    - !Ref Topics
    - Fixed:
        Type: AWS::SNS::Topic
""",
    "public access block without": """
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption: {ServerSideEncryptionConfiguration: [{ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}}]}
""",
}


def topic_loop(t):
    """[identifier, collection, fragment] of the loop that makes the mappings."""
    return t["Resources"]["Fn::ForEach::TopicMappings"]


def mapping_fragment(t):
    return topic_loop(t)[2]["IngestMapping&{Topic}"]["Properties"]


def topic_statement(t, sid):
    doc = topic_loop(t)[2]["IngestTopicAccess&{Topic}"]["Properties"]["PolicyDocument"]
    return next(s for s in doc["Statement"] if s.get("Sid") == sid)


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
    """Remove the statement with this Sid, also when an Fn::If yields it."""
    doc = props(t, resource_name)[document]
    doc["Statement"] = [s for s in doc["Statement"] if not any(x.get("Sid") == sid for _, x in expand(s, ""))]


def drop_lifecycle_rule(t, rule_id):
    rules = props(t, "DeadLetterBucket")["LifecycleConfiguration"]["Rules"]
    rules[:] = [r for r in rules if not any(x.get("Id") == rule_id for x in unwrap(r))]


def lifecycle_rule(t, rule_id):
    rules = props(t, "DeadLetterBucket")["LifecycleConfiguration"]["Rules"]
    return next(x for r in rules for x in unwrap(r) if x.get("Id") == rule_id)


def copy_role_arn(t):
    return t["Globals"]["Function"]["Environment"]["Variables"]["REDSHIFT_COPY_ROLE_ARN"]


def replace_node(node, old, new):
    """Replace every occurrence of `old` under `node` (in place)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for k, v in list(items):
        if v == old:
            node[k] = new
        else:
            replace_node(v, old, new)


def unname_copy_role(t):
    condition = statement(t, "DeadLetterBucketPolicy", "DenyObjectAccessOutsideThePipeline")["Condition"]
    replace_node(condition, copy_role_arn(t), "arn:aws:iam::123456789012:role/someone-else")


def trust_lambda_too(t):
    props(t, "RedshiftCopyRole")["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] = [
        "redshift.amazonaws.com",
        "lambda.amazonaws.com",
    ]


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
    # Staged COPY objects (load = "copy").
    ("no lifecycle expiry of staging/", lambda t: drop_lifecycle_rule(t, "expire-staged-objects")),
    (
        "no lifecycle expiry of staging/",
        lambda t: lifecycle_rule(t, "expire-staged-objects").update(ExpirationInDays=7),
    ),
    (
        "noncurrent versions of staging/ kept longer",
        lambda t: lifecycle_rule(t, "expire-staged-objects").pop("NoncurrentVersionExpiration"),
    ),
    (
        "deny writes under staging/ naming another KMS key",
        lambda t: statement(t, "DeadLetterBucketPolicy", "DenyOtherKmsKey")["Resource"].pop(),
    ),
    (
        "deny writes under staging/ asking for another encryption",
        lambda t: statement(t, "DeadLetterBucketPolicy", "DenyOtherEncryptionThanTheKey")["Resource"].pop(),
    ),
    (
        "ingest statement StageCopyObjects allows s3:PutObject outside its prefixes",
        lambda t: statement(t, "IngestAccessPolicy", "StageCopyObjects").update(
            Resource={"Fn::Sub": "${DeadLetterBucket.Arn}/*"}
        ),
    ),
    (
        "replay statement StageCopyObjects allows s3:DeleteObject outside its prefixes",
        lambda t: statement(t, "ReplayAccessPolicy", "StageCopyObjects").update(
            Resource=[
                {"Fn::Sub": "${DeadLetterBucket.Arn}/staging/*"},
                {"Fn::Sub": "${DeadLetterBucket.Arn}/archive/*"},
            ]
        ),
    ),
    (
        "ingest may not s3:PutObject under staging/",
        lambda t: drop_statement(t, "IngestAccessPolicy", "PolicyDocument", "StageCopyObjects"),
    ),
    (
        "replay may not s3:DeleteObject under staging/",
        lambda t: statement(t, "ReplayAccessPolicy", "StageCopyObjects").update(Action="s3:PutObject"),
    ),
    (
        "no REDSHIFT_COPY_ROLE_ARN",
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].pop("REDSHIFT_COPY_ROLE_ARN"),
    ),
    ("COPY role trusted by", trust_lambda_too),
    (
        "COPY role statement ReadStagedObjects reads outside staging/",
        lambda t: statement(t, "RedshiftCopyAccessPolicy", "ReadStagedObjects").update(
            Resource={"Fn::Sub": "${DeadLetterBucket.Arn}/*"}
        ),
    ),
    (
        "COPY role statement ListStagedObjects lists outside staging/",
        lambda t: statement(t, "RedshiftCopyAccessPolicy", "ListStagedObjects").pop("Condition"),
    ),
    (
        "COPY role statement ReadStagedObjects allows s3:PutObject",
        lambda t: statement(t, "RedshiftCopyAccessPolicy", "ReadStagedObjects").update(
            Action=["s3:GetObject", "s3:PutObject"]
        ),
    ),
    (
        "decrypts other than through S3",
        lambda t: statement(t, "RedshiftCopyAccessPolicy", "DecryptStagedObjectsThroughS3").pop("Condition"),
    ),
    ("does not name the COPY role", unname_copy_role),
    (
        "does not deny the COPY role s3:GetObject under quarantine/",
        lambda t: statement(t, "DeadLetterBucketPolicy", "DenyTheCopyRoleTheDeadLetters")["Resource"].pop(2),
    ),
    (
        "does not deny the COPY role s3:PutObject",
        lambda t: drop_statement(t, "DeadLetterBucketPolicy", "PolicyDocument", "DenyTheCopyRoleAllButReading"),
    ),
    (
        "does not deny the COPY role listing outside staging/",
        lambda t: drop_statement(t, "DeadLetterBucketPolicy", "PolicyDocument", "DenyTheCopyRoleListingOutsideStaging"),
    ),
    (
        "key policy does not let the COPY role decrypt",
        lambda t: drop_statement(t, "DataKey", "KeyPolicy", "RedshiftCopyRoleReadsStagedObjectsThroughS3"),
    ),
    (
        "gives the COPY role ['kms:GenerateDataKey']",
        lambda t: statement(t, "DataKey", "RedshiftCopyRoleReadsStagedObjectsThroughS3").update(
            Action=["kms:Decrypt", "kms:GenerateDataKey"]
        ),
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
    # Event source mappings: the loop over Topics, and each mapping it makes.
    ("event source mapping(s) of the ingest function for 2 topics", lambda t: topic_loop(t).__setitem__(1, [TOPICS[0]])),
    ("consumed by 0 event source mappings", lambda t: topic_loop(t).__setitem__(1, [TOPICS[0]])),
    (
        "(Lambda wants one per mapping)",
        lambda t: mapping_fragment(t)["AmazonManagedKafkaEventSourceConfig"].update(ConsumerGroupId={"Ref": "ConsumerGroupPrefix"}),
    ),
    ("Enabled is not the Enabled parameter", lambda t: mapping_fragment(t).update(Enabled=True)),
    ("StartingPosition is not the StartingPosition parameter", lambda t: mapping_fragment(t).update(StartingPosition="LATEST")),
    ("on-failure destination is not the dead-letter bucket", lambda t: mapping_fragment(t).pop("DestinationConfig")),
    ("MaximumRecordAgeInSeconds is not -1", lambda t: mapping_fragment(t).update(MaximumRecordAgeInSeconds=604800)),
    ("MaximumRetryAttempts is not bounded", lambda t: mapping_fragment(t).update(MaximumRetryAttempts=-1)),
    (
        f"may not kafka-cluster:ReadData on topic {TOPICS[1]}",
        lambda t: topic_loop(t)[2]["IngestTopicAccess&{Topic}"]["Properties"]["PolicyDocument"]["Statement"].pop(0),
    ),
    (
        "no wildcard",
        lambda t: topic_statement(t, "MskReadTopic")["Resource"]["Fn::Sub"].__setitem__(
            0, topic_statement(t, "MskReadTopic")["Resource"]["Fn::Sub"][0].replace("${Topic}", "*")
        ),
    ),
    (
        "may not kafka-cluster:AlterGroup on the consumer group",
        lambda t: topic_statement(t, "MskConsumerGroup")["Resource"]["Fn::Sub"].__setitem__(
            0, topic_statement(t, "MskConsumerGroup")["Resource"]["Fn::Sub"][0].replace("${ConsumerGroupPrefix}-", "other-")
        ),
    ),
    ("which grants its topic", lambda t: mapping_fragment(t).pop("Tags")),
    # Avro records behind a schema registry.
    (
        "EventRecordFormat is not SOURCE",
        lambda t: mapping_fragment(t)["AmazonManagedKafkaEventSourceConfig"]["SchemaRegistryConfig"]["Fn::If"][1].update(
            EventRecordFormat="JSON"
        ),
    ),
    ("may not glue:GetSchemaVersion", lambda t: drop_statement(t, "PipelineAccessPolicy", "PolicyDocument", "GlueSchemaVersions")),
    (
        "may read every Glue registry",
        lambda t: statement(t, "PipelineAccessPolicy", "GlueSchemaVersions")["Resource"].__setitem__(
            1, {"Fn::Sub": "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:schema/*"}
        ),
    ),
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
        try:
            expanded = expand_loops(template, CHECK_PARAMETERS)
        except ExpansionError as e:
            return [f"Fn::ForEach: {e}"]
        return pipeline_problems(expanded, emitted) + readme_problems(expanded, readme)

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
            mappings = mappings_of(Pipeline(load_expanded(path)), "ingest")
            print(
                f"{path}: IAM, encryption, retention, replay, alarm, dashboard and mapping checks passed"
                f" (Topics={','.join(TOPICS)}: {len(mappings)} event source mappings, {', '.join(sorted(mappings))})"
            )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
