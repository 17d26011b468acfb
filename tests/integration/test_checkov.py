"""checkov finds nothing unexplained, on template.yaml and on its SAM translation (what
CloudFormation deploys): every finding is fixed or skipped with a reason, in the resource's
Metadata (carried onto the resources SAM generates from it) or in .checkov.yaml, and README's table
lists every skipped check. Needs `.venv-checkov` (made by `make test` or `make checkov`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cascade.local import template

pytestmark = pytest.mark.slow

CHECKOV = template.ROOT / ".venv-checkov" / "bin" / "checkov"
CONFIG = template.ROOT / ".checkov.yaml"


def _checkov(path: Path) -> dict[str, Any]:
    assert CHECKOV.exists(), "checkov is missing: `make test` installs it into .venv-checkov"
    done = subprocess.run([str(CHECKOV), "--config-file", str(CONFIG), "-f", str(path), "-o", "json"],
                          capture_output=True, text=True, timeout=300, check=False, cwd=template.ROOT,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["resource_count"] > 0, report["summary"]
    return dict(report)


def _findings(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return list((report.get("results") or {}).get(kind) or [])


def _explained_in_readme() -> set[str]:
    readme = (template.ROOT / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `?(CKV2?_AWS_\d+)`? \|", readme, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def translated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sam = template.load()
    path = tmp_path_factory.mktemp("checkov") / "translated.json"
    path.write_text(json.dumps(template.with_checkov_skips(sam, template.translate(sam, bucket="artifacts"))))
    return path


@pytest.mark.parametrize("which", ["template.yaml", "translated"])
def test_checkov_leaves_no_finding_unexplained(which: str, translated: Path) -> None:
    report = _checkov(template.TEMPLATE if which == "template.yaml" else translated)
    failed = [(f["check_id"], f["resource"], f["check_name"]) for f in _findings(report, "failed_checks")]
    assert failed == []
    skipped = _findings(report, "skipped_checks")
    assert all((s.get("check_result") or {}).get("suppress_comment", "").strip() for s in skipped), skipped
    # Every check skipped, inline or for all functions, has its row in README's table.
    globally = set(yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["skip-check"])
    assert {s["check_id"] for s in skipped} | globally <= _explained_in_readme()
