"""template.yaml → CloudFormation, the way ``sam deploy`` would do it (aws-sam-translator),
with local artifact locations instead of uploaded ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse(path.read_text(encoding="utf-8")))


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id → {code_dir, handler} for every function in the SAM template."""
    handler_default = template.get("Globals", {}).get("Function", {}).get("Handler", "app.handler")
    found = {}
    for logical_id, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            props = res["Properties"]
            found[logical_id] = {"code_dir": ROOT / props["CodeUri"], "handler": props.get("Handler", handler_default)}
    return found


def http_routes(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(METHOD, path, function logical id) for every HttpApi event, as API Gateway would route them."""
    routes = []
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for event in (res["Properties"].get("Events") or {}).values():
            # The $default route (no Path) is the gateway's own answer here: see LocalStack._handle.
            if event["Type"] == "HttpApi" and "Path" in event["Properties"]:
                routes.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"], logical_id))
    return routes


def translate(template: dict[str, Any], bucket: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """SAM → CloudFormation. Code is expected at ``s3://<bucket>/<LogicalId>.zip``; the state
    machine definition is read from its file (what ``sam package`` would upload)."""
    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(template)
    for logical_id, res in sam["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://{bucket}/{logical_id}.zip"
        elif res["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://{bucket}/{logical_id}.zip"
        elif res["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text(encoding="utf-8"))

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    return dict(transform(sam, parameters or {}, _NoManagedPolicies()))


def with_checkov_skips(sam: dict[str, Any], cfn: dict[str, Any]) -> dict[str, Any]:
    """The translated template with each SAM resource's ``Metadata.checkov`` (its reasoned skips)
    on the resources SAM generated from it, whose ids start with its own (``StepFunction`` →
    ``StepFunctionRole``): the translator drops a SAM resource's Metadata."""
    out = copy.deepcopy(cfn)
    owners = sorted((name for name, res in sam["Resources"].items()
                     if res["Type"].startswith("AWS::Serverless::") and "checkov" in res.get("Metadata", {})),
                    key=len, reverse=True)
    for name, res in out["Resources"].items():
        owner = next((o for o in owners if name.startswith(o)), None)
        if owner is not None and (owner == name or name not in sam["Resources"]):
            res.setdefault("Metadata", {})["checkov"] = sam["Resources"][owner]["Metadata"]["checkov"]
    return out


if __name__ == "__main__":  # the translated template, for checkov (`make checkov`)
    import os
    import sys

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sam = load()
    json.dump(with_checkov_skips(sam, translate(sam, bucket="artifacts")), sys.stdout, indent=1)


__all__ = ["ROOT", "TEMPLATE", "functions", "http_routes", "load", "translate", "with_checkov_skips"]
