"""Fixtures for the deploy/ tests: both overlays rendered once per session with `kubectl kustomize`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# deploy/deploycheck.py and deploy/generate.py, and this directory's deploy_helpers.py
for path in (HERE.parents[1] / "deploy", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import deploycheck  # noqa: E402
from deploy_helpers import DEPLOY, OVERLAYS, Doc  # noqa: E402


@pytest.fixture(scope="session")
def rendered_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("kubectl") is None:
        pytest.fail(
            "kubectl not found on PATH: the deploy tests render the overlays with `kubectl kustomize`"
        )
    out = tmp_path_factory.mktemp("rendered")
    files = {}
    for overlay in OVERLAYS:
        proc = subprocess.run(
            ["kubectl", "kustomize", str(DEPLOY / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        files[overlay] = out / f"{overlay}.yaml"
        files[overlay].write_text(proc.stdout)
    return files


@pytest.fixture(scope="session")
def rendered(rendered_files: dict[str, Path]) -> dict[str, list[Doc]]:
    return {name: deploycheck.load_documents(path) for name, path in rendered_files.items()}


@pytest.fixture(scope="session")
def ops_job() -> Doc:
    """deploy/ops/dlq-redrive.yaml with its variables filled in, as check.sh does."""
    text = (DEPLOY / "ops" / "dlq-redrive.yaml").read_text()
    text = text.replace("${TOPIC}", "commerce.orders").replace("${SERVICE}", "rewards")
    (doc,) = deploycheck.load_documents_from_text(text)
    return doc
