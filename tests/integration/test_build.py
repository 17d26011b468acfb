"""`sam build` packages every function with the core layer: the cascade package, its scenarios
and its pinned dependencies built for arm64. Needs `.venv-sam` (made by `make test`) and
Python 3.12 (pyenv's 3.12.1 here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cascade.local import template

pytestmark = pytest.mark.slow

SAM = template.ROOT / ".venv-sam" / "bin" / "sam"
AARCH64 = 0xB7  # ELF e_machine


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert SAM.exists(), "sam is missing: `make test` installs it into .venv-sam"
    out = tmp_path_factory.mktemp("sam-build")
    env = {**os.environ, "PYENV_VERSION": "3.12.1:3.11.7", "SAM_CLI_TELEMETRY": "0",
           "PATH": f"{SAM.parent}:{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(SAM), "build", "--build-dir", str(out), "--template", str(template.TEMPLATE)],
                          cwd=template.ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return out


def test_every_function_is_built_with_its_handler(build_dir: Path) -> None:
    for logical, spec in template.functions(template.load()).items():
        assert (build_dir / logical / "app.py").read_text() == (spec["code_dir"] / "app.py").read_text()


def test_the_core_layer_carries_the_package_scenarios_and_arm64_dependencies(build_dir: Path) -> None:
    site = build_dir / "CoreLayer" / "python"
    for module in ("ingest", "engine", "signals", "views", "api", "channels/telegram", "store"):
        assert (site / "cascade" / f"{module}.py").is_file(), module
    assert {p.name for p in (site / "cascade" / "scenarios").glob("*.yaml")} >= {"delivery-failed.yaml",
                                                                                 "abandoned-cart.yaml"}
    assert {p.name for p in (site / "cascade" / "dashboard").iterdir()} >= {"index.html", "app.js", "style.css"}
    for dist in ("aws_lambda_powertools", "pydantic", "httpx", "jinja2", "yaml", "phonenumbers"):
        assert (site / dist).is_dir(), dist
    swagger_ui = site / "aws_lambda_powertools" / "event_handler" / "openapi" / "swagger_ui"  # /docs, offline
    assert {"swagger-ui-bundle.min.js", "swagger-ui.min.css"} <= {p.name for p in swagger_ui.iterdir()}
    native = next((site / "pydantic_core").glob("_pydantic_core*.so"))
    assert _elf_machine(native) == AARCH64, "dependencies must be built for the functions' arm64 architecture"


def test_every_function_gets_the_layer(build_dir: Path) -> None:
    built = template.load(build_dir / "template.yaml")
    layers = built["Globals"]["Function"]["Layers"]
    assert layers == [{"Ref": "CoreLayer"}]
    for logical in template.functions(built):
        assert "Layers" not in built["Resources"][logical]["Properties"], f"{logical} must not override the layer"
