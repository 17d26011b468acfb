"""Create the translated template's resources in moto, as CloudFormation would on AWS.

moto's own CloudFormation skips several types this template uses (secrets, SNS subscriptions,
SES configuration sets), so the local stack resolves the intrinsics itself and creates each
resource with the ordinary API call. API Gateway resources are left to the local gateway."""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from cascade.local.template import ROOT

ACCOUNT = "123456789012"
SKIPPED = ("AWS::ApiGatewayV2::", "AWS::Lambda::Permission", "AWS::SNS::TopicPolicy")


@dataclass
class Deployed:
    stack_name: str
    region: str
    physical: dict[str, str] = field(default_factory=dict)  # logical id → Ref value
    arns: dict[str, str] = field(default_factory=dict)  # logical id → Arn
    function_env: dict[str, dict[str, str]] = field(default_factory=dict)  # function name → env
    email_event_topics: dict[str, str] = field(default_factory=dict)  # configuration set → topic ARN
    stream_arns: dict[str, str] = field(default_factory=dict)  # table logical id → its stream's ARN
    stream_mappings: list[str] = field(default_factory=list)  # ARNs of functions fed by a stream
    outputs: dict[str, str] = field(default_factory=dict)


def _zip_dir(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                zf.write(file, file.relative_to(path).as_posix())
    return buf.getvalue()


def _deps(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
        for v in value.values():
            found |= _deps(v)
    elif isinstance(value, list):
        for v in value:
            found |= _deps(v)
    return found


class Deployer:
    def __init__(self, cfn: dict[str, Any], stack_name: str, region: str, parameters: dict[str, str],
                 code_dirs: dict[str, Path]) -> None:
        self.cfn = cfn
        self.region = region
        self.code_dirs = code_dirs
        self.out = Deployed(stack_name=stack_name, region=region)
        self.params = {name: str(spec.get("Default", "")) for name, spec in cfn.get("Parameters", {}).items()}
        self.params.update(parameters)
        self.pseudo = {"AWS::Region": region, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                       "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com"}
        self.bucket = f"{stack_name}-artifacts"
        self.conditions: dict[str, bool] = {}

    def c(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)

    # -- intrinsics ---------------------------------------------------------------------------

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.out.physical[name]

    def att(self, logical: str, attr: str) -> str:
        if attr == "Arn":
            return self.out.arns[logical]
        if attr == "StreamArn":
            return self.out.stream_arns[logical]
        if attr in ("Name", "TopicName"):
            return self.out.physical[logical].rsplit(":", 1)[-1]
        if attr == "QueueName":
            return self.out.physical[logical].rsplit("/", 1)[-1]
        raise KeyError(f"{logical}.{attr}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            logical, attr = target if isinstance(target, list) else target.split(".", 1)
            return self.att(logical, attr)
        if "Fn::Sub" in value:
            arg = value["Fn::Sub"]
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

            def sub(m: re.Match[str]) -> str:
                key = m.group(1)
                if key in extra:
                    return str(extra[key])
                if "." in key:
                    return self.att(*key.split(".", 1))
                return self.ref(key)

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(p) for p in self.resolve(parts))
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        """A template condition (the functions conditions may use: Equals, Not, And, Or, Condition)."""
        if name not in self.conditions:
            self.conditions[name] = self._holds(self.cfn.get("Conditions", {})[name])
        return self.conditions[name]

    def _holds(self, spec: Any) -> bool:
        if isinstance(spec, dict) and "Condition" in spec:
            return self.condition(spec["Condition"])
        (fn, args), = spec.items()
        if fn == "Fn::Equals":
            a, b = self.resolve(args)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not self._holds(args[0])
        if fn == "Fn::And":
            return all(self._holds(a) for a in args)
        if fn == "Fn::Or":
            return any(self._holds(a) for a in args)
        raise KeyError(fn)

    # -- deployment ---------------------------------------------------------------------------

    def order(self) -> list[str]:
        resources = self.cfn["Resources"]
        done: list[str] = []
        pending = dict(resources)
        def needs(res: dict[str, Any]) -> set[str]:
            depends_on = res.get("DependsOn", [])
            explicit = {depends_on} if isinstance(depends_on, str) else set(depends_on)
            return (_deps(res.get("Properties", {})) | explicit) & set(resources)

        while pending:
            ready = [n for n, r in pending.items() if needs(r) <= set(done)]
            if not ready:
                raise RuntimeError(f"circular references among {sorted(pending)}")
            for n in sorted(ready):
                done.append(n)
                pending.pop(n)
        return done

    def deploy(self) -> Deployed:
        s3 = self.c("s3")
        s3.create_bucket(Bucket=self.bucket)
        for logical, path in self.code_dirs.items():
            s3.put_object(Bucket=self.bucket, Key=f"{logical}.zip", Body=_zip_dir(path))
        for logical in self.order():
            res = self.cfn["Resources"][logical]
            if "Condition" in res and not self.condition(res["Condition"]):
                continue  # CloudFormation leaves it out
            if res["Type"].startswith(SKIPPED):
                self.out.physical[logical] = "local"
                continue
            create = getattr(self, "_" + res["Type"].replace("AWS::", "").replace("::", "_"))
            create(logical, self.resolve(res.get("Properties", {})))
        for name, spec in self.cfn.get("Outputs", {}).items():
            self.out.outputs[name] = str(self.resolve(spec["Value"]))
        return self.out

    def _name(self, logical: str) -> str:
        return f"{self.out.stack_name}-{logical}"[:64]

    def _DynamoDB_Table(self, logical: str, p: dict[str, Any]) -> None:
        name = p.get("TableName") or self._name(logical)
        kwargs: dict[str, Any] = {k: p[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
                                  if k in p}
        if "StreamSpecification" in p:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        desc = self.c("dynamodb").create_table(TableName=name, BillingMode=p.get("BillingMode", "PAY_PER_REQUEST"),
                                               **kwargs)["TableDescription"]
        if "LatestStreamArn" in desc:
            self.out.stream_arns[logical] = desc["LatestStreamArn"]
        if "TimeToLiveSpecification" in p:
            self.c("dynamodb").update_time_to_live(TableName=name, TimeToLiveSpecification=p["TimeToLiveSpecification"])
        self.out.physical[logical], self.out.arns[logical] = name, desc["TableArn"]

    def _SecretsManager_Secret(self, logical: str, p: dict[str, Any]) -> None:
        value = p.get("SecretString")
        if value is None:
            gen = p.get("GenerateSecretString", {})
            import secrets

            doc = json.loads(gen.get("SecretStringTemplate", "{}"))
            doc[gen.get("GenerateStringKey", "password")] = secrets.token_urlsafe(30)
            value = json.dumps(doc)
        arn = self.c("secretsmanager").create_secret(Name=self._name(logical), SecretString=value)["ARN"]
        self.out.physical[logical] = self.out.arns[logical] = arn

    def _KMS_Key(self, logical: str, p: dict[str, Any]) -> None:
        kms = self.c("kms")
        meta = kms.create_key(Description=p.get("Description", ""), KeyUsage=p.get("KeyUsage", "ENCRYPT_DECRYPT"),
                              KeySpec=p.get("KeySpec", "SYMMETRIC_DEFAULT"),
                              Policy=json.dumps(p["KeyPolicy"]))["KeyMetadata"]
        if str(p.get("EnableKeyRotation", "")).lower() == "true":
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        self.out.physical[logical], self.out.arns[logical] = meta["KeyId"], meta["Arn"]

    def _SNS_Topic(self, logical: str, p: dict[str, Any]) -> None:
        attributes = {k: str(p[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in p}
        arn = self.c("sns").create_topic(Name=p.get("TopicName") or self._name(logical),
                                         Attributes=attributes)["TopicArn"]
        self.out.physical[logical] = self.out.arns[logical] = arn

    def _SQS_Queue(self, logical: str, p: dict[str, Any]) -> None:
        sqs = self.c("sqs")
        attributes = {k: str(p[k]) for k in ("KmsMasterKeyId", "MessageRetentionPeriod", "VisibilityTimeout")
                      if k in p}
        url = sqs.create_queue(QueueName=p.get("QueueName") or self._name(logical), Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.out.physical[logical], self.out.arns[logical] = url, arn

    def _Logs_LogGroup(self, logical: str, p: dict[str, Any]) -> None:
        logs = self.c("logs")
        name = p.get("LogGroupName") or f"/{self.out.stack_name}/{logical}"
        logs.create_log_group(logGroupName=name, **({"kmsKeyId": p["KmsKeyId"]} if "KmsKeyId" in p else {}))
        if "RetentionInDays" in p:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
        group = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
        self.out.physical[logical], self.out.arns[logical] = name, group["arn"]

    def _CloudWatch_Alarm(self, logical: str, p: dict[str, Any]) -> None:
        spec = {k: p[k] for k in ("AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic",
                                  "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions") if k in p}
        name = p.get("AlarmName") or self._name(logical)
        self.c("cloudwatch").put_metric_alarm(
            AlarmName=name, Period=int(p["Period"]), EvaluationPeriods=int(p["EvaluationPeriods"]),
            Threshold=float(p["Threshold"]), **spec)
        self.out.physical[logical] = name

    def _SNS_Subscription(self, logical: str, p: dict[str, Any]) -> None:
        arn = self.c("sns").subscribe(TopicArn=p["TopicArn"], Protocol=p["Protocol"], Endpoint=p["Endpoint"])
        self.out.physical[logical] = arn["SubscriptionArn"]

    def _SES_ConfigurationSet(self, logical: str, p: dict[str, Any]) -> None:
        name = p.get("Name") or self._name(logical)
        self.c("sesv2").create_configuration_set(ConfigurationSetName=name)
        self.out.physical[logical] = name

    def _SES_ConfigurationSetEventDestination(self, logical: str, p: dict[str, Any]) -> None:
        # moto has no SES event publishing: the local SES stand-in publishes to this topic itself.
        topic = p["EventDestination"]["SnsDestination"]["TopicARN"]
        self.out.email_event_topics[p["ConfigurationSetName"]] = topic
        self.out.physical[logical] = logical

    def _IAM_Role(self, logical: str, p: dict[str, Any]) -> None:
        iam = self.c("iam")
        name = self._name(logical)
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]))["Role"]["Arn"]
        for managed in p.get("ManagedPolicyArns", []):
            # moto loads AWS managed policies only when asked (slowly); nothing here checks them.
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):
                iam.attach_role_policy(RoleName=name, PolicyArn=managed)
        for policy in p.get("Policies", []):
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                # SAM's policy templates leave Version out (IAM then assumes the
                                # old one); moto insists on it. The statements mean the same.
                                PolicyDocument=json.dumps({"Version": "2012-10-17", **policy["PolicyDocument"]}))
        self.out.physical[logical], self.out.arns[logical] = name, arn

    def _Lambda_LayerVersion(self, logical: str, p: dict[str, Any]) -> None:
        arn = self.c("lambda").publish_layer_version(
            LayerName=p.get("LayerName") or self._name(logical), Content=p["Content"],
            CompatibleRuntimes=p.get("CompatibleRuntimes", []))["LayerVersionArn"]
        self.out.physical[logical] = self.out.arns[logical] = arn

    def _Lambda_Function(self, logical: str, p: dict[str, Any]) -> None:
        name = p.get("FunctionName") or self._name(logical)
        env = {k: str(v) for k, v in (p.get("Environment") or {}).get("Variables", {}).items()}
        fn = self.c("lambda").create_function(
            FunctionName=name, Runtime=p["Runtime"], Role=p["Role"], Handler=p["Handler"], Code=p["Code"],
            Architectures=p.get("Architectures", ["arm64"]), Timeout=int(p.get("Timeout", 3)),
            MemorySize=int(p.get("MemorySize", 128)), Environment={"Variables": env}, Layers=p.get("Layers", []),
        )
        self.out.physical[logical], self.out.arns[logical] = name, fn["FunctionArn"]
        self.out.function_env[name] = env

    def _Lambda_EventSourceMapping(self, logical: str, p: dict[str, Any]) -> None:
        from cascade.local import streams

        name = p["FunctionName"]
        arn = next(a for lg, a in self.out.arns.items() if self.out.physical.get(lg) == name)
        spec: dict[str, Any] = {k: p[k] for k in ("BatchSize", "MaximumBatchingWindowInSeconds", "MaximumRetryAttempts",
                                  "FilterCriteria", "DestinationConfig") if k in p}
        resp = self.c("lambda").create_event_source_mapping(
            EventSourceArn=p["EventSourceArn"], FunctionName=name, StartingPosition=p.get("StartingPosition", "LATEST"),
            **spec)
        streams.register(arn, name, spec)
        self.out.stream_mappings.append(arn)
        self.out.physical[logical] = resp["UUID"]

    def _Lambda_EventInvokeConfig(self, logical: str, p: dict[str, Any]) -> None:
        # Recorded only: the local SNS delivery invokes the function at once, inside the publish.
        self.c("lambda").put_function_event_invoke_config(
            FunctionName=p["FunctionName"], **{k: p[k] for k in ("MaximumRetryAttempts", "DestinationConfig") if k in p})
        self.out.physical[logical] = logical

    def _StepFunctions_StateMachine(self, logical: str, p: dict[str, Any]) -> None:
        definition = p["DefinitionString"]
        for key, val in (p.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(val))
        arn = self.c("stepfunctions").create_state_machine(
            name=p.get("StateMachineName") or self._name(logical), definition=definition, roleArn=p["RoleArn"],
            type=p.get("StateMachineType", "STANDARD"))["stateMachineArn"]
        self.out.physical[logical] = self.out.arns[logical] = arn


def deploy(cfn: dict[str, Any], stack_name: str, region: str, parameters: dict[str, str],
           code_dirs: dict[str, Path]) -> Deployed:
    return Deployer(cfn, stack_name, region, parameters, code_dirs).deploy()


__all__ = ["ACCOUNT", "ROOT", "Deployed", "deploy"]
