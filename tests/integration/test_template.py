"""The deployment template: lint-clean, translatable with aws-sam-translator, and the translated
stack creates in moto's CloudFormation. Each check runs in a fresh interpreter, because moto's
in-process mock would share (and reset) the backends of the session's local stack."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from cascade.local import template

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
