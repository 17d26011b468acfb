"""The deployment template: lint-clean, translatable with aws-sam-translator, and the translated
stack creates in moto's CloudFormation. Each check runs in a fresh interpreter, because moto's
in-process mock would share (and reset) the backends of the session's local stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any, get_args

import pytest

from cascade.circuit import CIRCUIT_OPENED, METRIC_NAMESPACE
from cascade.local import template
from cascade.models import ChannelName

pytestmark = pytest.mark.slow


def _python(code: str) -> str:
    env = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_http_route_the_issue_names_is_in_the_template() -> None:
    routes = {(m, p) for m, p, _ in template.http_routes(template.load())}
    assert {("POST", "/v1/events"), ("GET", "/v1/cascades/{id}"), ("POST", "/v1/cascades/{id}/cancel"),
            ("GET", "/v1/recipients/{id}/timeline"), ("GET", "/openapi.json"), ("GET", "/docs"),
            ("POST", "/webhooks/telegram"), ("GET", "/r/{token}"), ("POST", "/v1/signals"),
            ("POST", "/v1/recipients/{id}/bind/{channel}"), ("GET", "/webhooks/whatsapp"),
            ("POST", "/webhooks/whatsapp"), ("POST", "/webhooks/viber"), ("POST", "/webhooks/twilio/voice"),
            ("POST", "/webhooks/twilio/sms"), ("POST", "/webhooks/operator")} <= routes


def test_docs_and_the_document_reach_the_api_function() -> None:
    # /docs carries Swagger UI's assets inline; its other answers (?format=json, the OAuth2
    # redirect) are the same path, and API Gateway routes on the path alone.
    routes = set(template.http_routes(template.load()))
    assert {("GET", "/docs", "ApiFunction"), ("GET", "/openapi.json", "ApiFunction")} <= routes


def test_a_request_no_route_matches_reaches_the_api_for_a_json_404_or_405() -> None:
    out = _python("""
        import json
        from cascade.local import template
        body = template.translate(template.load(), bucket="b")["Resources"]["HttpApi"]["Properties"]["Body"]
        print(json.dumps(body["paths"]["$default"]["x-amazon-apigateway-any-method"]))
    """)
    assert "ApiFunction" in json.loads(out)["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]


def test_the_translated_template_creates_a_stack_in_moto() -> None:
    out = _python("""
        import json, boto3
        from moto import mock_aws
        from cascade.local import template
        cfn = template.translate(template.load(), bucket="artifacts")
        with mock_aws():
            s3 = boto3.client("s3"); s3.create_bucket(Bucket="artifacts")
            for name in cfn["Resources"]:
                s3.put_object(Bucket="artifacts", Key=f"{name}.zip", Body=b"PK\\x05\\x06" + b"\\0" * 18)
            cf = boto3.client("cloudformation")
            cf.create_stack(StackName="cascade", TemplateBody=json.dumps(cfn), Capabilities=["CAPABILITY_IAM"])
            stack = cf.describe_stacks(StackName="cascade")["Stacks"][0]
            resources = cf.describe_stack_resources(StackName="cascade")["StackResources"]
            made = {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in resources if "LogicalResourceId" in r}
            table = boto3.client("dynamodb").describe_table(TableName=made["CascadeTable"])["Table"]
            machines = boto3.client("stepfunctions").list_state_machines()["stateMachines"]
            print(json.dumps({"status": stack["StackStatus"], "made": made, "keys": table["KeySchema"],
                              "machines": [m["name"] for m in machines]}))
    """)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "CREATE_COMPLETE"
    assert {"CascadeTable", "CascadeStateMachine", "StepFunction", "IngestFunction"} <= set(result["made"])
    assert any(name.startswith("CoreLayer") for name in result["made"])  # SAM suffixes layer versions
    assert result["keys"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert result["machines"] == ["cascade-cascade"]


def test_the_state_machine_keeps_transitions_per_step_low() -> None:
    """One Task per step plus one Pass to advance: the loop is two states, whatever the scenario."""
    asl = json.loads((template.ROOT / "statemachine" / "cascade.asl.json").read_text())
    step = asl["States"]["Step"]
    assert step["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert step["TimeoutSecondsPath"] == "$.wait_seconds" and step.get("End") is True
    assert asl["States"]["Escalate"]["Next"] == "Step"


# ---- operating on AWS: encryption, failures kept, alarms ------------------------------------------

FUNCTIONS = sorted(template.functions(template.load()))


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return template.load()


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return template.translate(sam, bucket="artifacts")


def _of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in cfn["Resources"].items() if res["Type"] == kind}


def test_topics_with_contact_data_and_the_alarm_topic_are_encrypted_with_the_stacks_key(cfn: dict[str, Any]) -> None:
    topics = _of_type(cfn, "AWS::SNS::Topic")
    assert {"EmailEventsTopic", "InboundSmsTopic", "AlarmTopic"} <= set(topics)
    assert all(t["Properties"]["KmsMasterKeyId"] == {"Ref": "SecretDataKey"} for t in topics.values())
    # The services that publish there may use the key, from this account only.
    statements = cfn["Resources"]["SecretDataKey"]["Properties"]["KeyPolicy"]["Statement"]
    publishers = next(s for s in statements if s.get("Sid") == "ServicesPublishToEncryptedTopics")
    assert set(publishers["Principal"]["Service"]) == {"ses.amazonaws.com", "sms-voice.amazonaws.com",
                                                       "cloudwatch.amazonaws.com"}
    assert set(publishers["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert publishers["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    (inbound,) = cfn["Resources"]["InboundSmsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (inbound["Principal"], inbound["Action"]) == ({"Service": "sms-voice.amazonaws.com"}, "sns:Publish")
    queue = cfn["Resources"]["FailedEventsQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Ref": "SecretDataKey"}


def test_the_api_throttle_is_a_parameter_sized_so_it_never_binds_before_aws(sam: dict[str, Any],
                                                                           cfn: dict[str, Any]) -> None:
    """Item 7: the per-route throttle (a fixed 200 rps, ~17 M triggers a day) is ApiRateLimit /
    ApiBurstLimit, and its default lets a trigger route and a stop route run together within the
    account's default 10,000 rps, above every AWS limit the capacity model finds for the design."""
    from tests import capacity

    (stage,) = _of_type(cfn, "AWS::ApiGatewayV2::Stage").values()
    route = stage["Properties"]["DefaultRouteSettings"]
    assert route == {"ThrottlingRateLimit": {"Ref": "ApiRateLimit"}, "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"}}
    rate, burst = (int(sam["Parameters"][name]["Default"]) for name in ("ApiRateLimit", "ApiBurstLimit"))
    quotas = capacity.Quotas(api_route_rps=rate)
    assert 2 * rate <= quotas.apigw_account_rps and burst <= 5_000
    assert rate * 86_400 >= capacity.GOAL_NO_SFN_RAISE_PER_DAY
    cascade = capacity.Counts(steps=4, timers=4, lifetime_h=56, start_executions=1, transitions=10, lambda_invokes=6,
                              lambda_s_per_invoke=0.1, lambda_memory_gb=0.5, ddb_wru=40, ddb_rru=20, api_requests=1)
    for column in capacity.compare(cascade, quotas):
        assert column.binds.name != "template route throttle (ApiRateLimit)"
    assert f"{rate * 86_400 / 1e6:.1f} M triggers a day" in sam["Parameters"]["ApiRateLimit"]["Description"]


def test_access_logs_name_the_route_and_never_the_caller_or_the_path(cfn: dict[str, Any]) -> None:
    (stage,) = _of_type(cfn, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["AccessLogGroup", "Arn"]}
    fields = json.loads(settings["Format"])
    assert {"requestId", "routeKey", "status", "responseLatency"} <= set(fields)
    variables = " ".join(fields.values())
    for leak in ("sourceIp", "identity", "path", "userAgent", "querystring", "authorizer"):
        assert leak not in variables
    group = cfn["Resources"]["AccessLogGroup"]["Properties"]
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["SecretDataKey", "Arn"]}
    assert group["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    key = cfn["Resources"]["SecretDataKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Sid") == "LogsEncryptAccessLogs" for s in key)


def test_what_a_function_gives_up_on_goes_to_the_encrypted_failed_events_queue(cfn: dict[str, Any]) -> None:
    queue_arn = {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
    mappings = _of_type(cfn, "AWS::Lambda::EventSourceMapping")
    assert {m["Properties"]["FunctionName"]["Ref"] for m in mappings.values()} == {"AggregatorFunction",
                                                                                  "OutboundFunction"}
    for mapping in mappings.values():
        assert mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn
    (invoke_config,) = _of_type(cfn, "AWS::Lambda::EventInvokeConfig").values()
    assert invoke_config["Properties"]["FunctionName"] == {"Ref": "AwsEventsFunction"}
    assert invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn
    # Each of them may send there, and encrypt with the queue's key.
    for function in ("AggregatorFunction", "OutboundFunction", "AwsEventsFunction"):
        policies = json.dumps(cfn["Resources"][f"{function}Role"]["Properties"]["Policies"])
        assert '"sqs:SendMessage"' in policies and "kms:GenerateDataKey" in policies, function


def _alarms(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    return [res["Properties"] for res in _of_type(cfn, "AWS::CloudWatch::Alarm").values()]


def _watching(cfn: dict[str, Any], namespace: str, metric: str, **dimensions: Any) -> list[dict[str, Any]]:
    return [a for a in _alarms(cfn) if (a["Namespace"], a["MetricName"]) == (namespace, metric)
            and {d["Name"]: d["Value"] for d in a["Dimensions"]} == dimensions]


def test_every_alarm_the_issue_names_exists_and_notifies_the_alarm_topic(cfn: dict[str, Any]) -> None:
    assert len(FUNCTIONS) == 9
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            assert len(_watching(cfn, "AWS/Lambda", metric, FunctionName={"Ref": function})) == 1, (function, metric)
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        assert len(_watching(cfn, "AWS/States", metric, StateMachineArn={"Ref": "CascadeStateMachine"})) == 1
    assert _watching(cfn, "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                     QueueName={"Fn::GetAtt": ["FailedEventsQueue", "QueueName"]})
    for consumer in ("AggregatorFunction", "OutboundFunction"):
        (age,) = _watching(cfn, "AWS/Lambda", "IteratorAge", FunctionName={"Ref": consumer})
        assert age["Statistic"] == "Maximum"
    for channel in get_args(ChannelName):
        assert len(_watching(cfn, METRIC_NAMESPACE, CIRCUIT_OPENED, channel=channel, service="cascade")) == 1, channel
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in _alarms(cfn))


def test_the_alarm_email_is_subscribed_only_when_given(sam: dict[str, Any], cfn: dict[str, Any]) -> None:
    assert sam["Parameters"]["AlarmEmail"]["Default"] == ""
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                                          "Endpoint": {"Ref": "AlarmEmail"}}
    assert cfn["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


@pytest.mark.parametrize("email", ["", "ops@example.com"])
def test_the_local_deployer_creates_the_operating_resources_in_moto(email: str) -> None:
    out = _python(f"""
        import json, boto3
        from moto import mock_aws
        from cascade.local import template
        from cascade.local.deploy import deploy
        sam = template.load()
        cfn = template.translate(sam, bucket="cascade-artifacts")
        dirs = {{k: v["code_dir"] for k, v in template.functions(sam).items()}}
        dirs["CoreLayer"] = template.ROOT / "functions" / "ingest"
        with mock_aws():
            d = deploy(cfn, "cascade", "us-east-1", {{"AlarmEmail": {email!r}}}, dirs)
            sns, sqs = boto3.client("sns"), boto3.client("sqs")
            topics = {{t: sns.get_topic_attributes(TopicArn=d.outputs[t])["Attributes"].get("KmsMasterKeyId")
                      for t in ("EmailEventsTopicArn", "InboundSmsTopicArn", "AlarmTopicArn")}}
            subscriptions = sns.list_subscriptions_by_topic(TopicArn=d.outputs["AlarmTopicArn"])["Subscriptions"]
            queue = sqs.get_queue_attributes(QueueUrl=d.outputs["FailedEventsQueueUrl"], AttributeNames=["All"])
            alarms = boto3.client("cloudwatch").describe_alarms(MaxRecords=100)["MetricAlarms"]
            groups = boto3.client("logs").describe_log_groups()["logGroups"]
            mappings = boto3.client("lambda").list_event_source_mappings()["EventSourceMappings"]
            print(json.dumps({{"key": d.physical["SecretDataKey"], "topics": topics,
                              "subscriptions": [s["Endpoint"] for s in subscriptions],
                              "queue_key": queue["Attributes"].get("KmsMasterKeyId"), "alarms": len(alarms),
                              "retention": [g.get("retentionInDays") for g in groups],
                              "on_failure": [m["DestinationConfig"]["OnFailure"]["Destination"] for m in mappings],
                              "queue_arn": queue["Attributes"]["QueueArn"]}}))
    """)
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result["topics"].values()) == {result["key"]}
    assert result["subscriptions"] == ([email] if email else [])
    assert result["queue_key"] == result["key"]
    assert result["alarms"] == 2 + 2 * len(FUNCTIONS) + 1 + 2 + len(get_args(ChannelName))
    assert result["retention"] == [30]
    assert result["on_failure"] == [result["queue_arn"]] * 2


def test_an_open_circuit_emits_the_metric_its_alarm_watches(cfn: dict[str, Any]) -> None:
    out = _python("""
        import boto3
        from moto import mock_aws
        from cascade.circuit import Circuit
        from cascade.store import CascadeStore
        with mock_aws():
            db = boto3.client("dynamodb")
            db.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "sk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}])
            circuit = Circuit(CascadeStore("t", db), threshold=2, cooldown_seconds=60)
            circuit.failed("viber", now=1000.0)
            print("-- one failure: still closed")
            circuit.failed("viber", now=1001.0)
    """)
    before, after = out.split("-- one failure: still closed")
    assert "CircuitOpened" not in before
    (line,) = [json.loads(x) for x in after.splitlines() if '"CloudWatchMetrics"' in x]
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [{"Name": "CircuitOpened", "Unit": "Count"}]
    (dimensions,) = directive["Dimensions"]
    emitted = {name: line[name] for name in dimensions}
    assert line["CircuitOpened"] in ([1.0], 1.0, 1)
    (alarm,) = _watching(cfn, directive["Namespace"], "CircuitOpened", **emitted)
    assert emitted == {"channel": "viber", "service": "cascade"} and alarm["Threshold"] == 1
