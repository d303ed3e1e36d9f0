"""deploy-check passes on both overlays and fails on the mistakes it exists to catch.

Each negative test takes the rendered overlay, breaks one thing, writes the YAML to a temp dir and
runs the same functions deploy/check.sh runs (deploy/deploycheck.py), or the script itself.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import deploycheck
import pytest
import yaml
from deploy_helpers import DEPLOY, ROOT, one

Doc = dict[str, Any]


def write(tmp_path: Path, docs: list[Doc], name: str = "mutated.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def mutated(rendered: dict[str, list[Doc]], overlay: str = "prod") -> list[Doc]:
    return copy.deepcopy(rendered[overlay])


def api_container(docs: list[Doc], service: str = "rewards") -> Doc:
    container: Doc = one(docs, "Deployment", f"{service}-api")["spec"]["template"]["spec"]["containers"][0]
    return container


def test_both_overlays_and_the_ops_job_pass(
    rendered_files: dict[str, Path], ops_job: Doc, tmp_path: Path
) -> None:
    paths = [*rendered_files.values(), write(tmp_path, [ops_job], "ops.yaml")]
    assert deploycheck.check_files(paths) == []


# ---------------------------------------------------------------- custom resource field typos


@pytest.mark.parametrize(
    ("kind", "name", "path", "typo"),
    [
        ("KafkaTopic", "rewards", ["spec"], ("partitions", "partitons")),
        ("Cluster", "rewards-db", ["spec"], ("instances", "instance")),
        ("ScaledObject", "rewards-worker", ["spec"], ("maxReplicaCount", "maxReplicas")),
        ("Kafka", "meadow", ["spec", "kafka"], ("listeners", "listners")),
    ],
)
def test_a_typo_in_a_custom_resource_field_fails(
    rendered: dict[str, list[Doc]],
    tmp_path: Path,
    kind: str,
    name: str,
    path: list[str],
    typo: tuple[str, str],
) -> None:
    doc = copy.deepcopy(one(rendered["prod"], kind, name))
    node = doc
    for key in path:
        node = node[key]
    good, bad = typo
    node[bad] = node.pop(good)
    # only the broken document, to keep the test fast: one check-jsonschema run
    docs_file = write(tmp_path, [doc])
    errors = deploycheck.validate_custom(deploycheck.load_documents(docs_file), tmp_path)
    assert any(f"'{bad}' was unexpected" in e for e in errors), errors


def test_deploycheck_exits_non_zero_on_a_custom_resource_typo(
    rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    """The script check.sh calls, end to end: exit 1 and say what is wrong."""
    topic = copy.deepcopy(one(rendered["prod"], "KafkaTopic", "membership"))
    topic["spec"]["replcas"] = topic["spec"].pop("replicas")
    proc = subprocess.run(
        [sys.executable, str(DEPLOY / "deploycheck.py"), str(write(tmp_path, [topic]))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "'replcas' was unexpected" in proc.stderr


def test_a_custom_resource_kind_without_a_schema_fails(tmp_path: Path) -> None:
    doc = {"apiVersion": "example.io/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {}}
    errors = deploycheck.validate_custom([doc], tmp_path)
    assert len(errors) == 1
    assert "no schema" in errors[0]


def test_a_typo_in_a_core_kind_fails(rendered: dict[str, list[Doc]], tmp_path: Path) -> None:
    deployment = copy.deepcopy(one(rendered["dev"], "Deployment", "rewards-api"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolcy"] = container.pop("imagePullPolicy")
    errors = deploycheck.validate_core([deployment], tmp_path)
    assert any("imagePullPolcy" in e for e in errors), errors


# ---------------------------------------------------------------- missing probes


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_an_api_without_a_probe_fails(rendered: dict[str, list[Doc]], probe: str) -> None:
    docs = mutated(rendered)
    del api_container(docs)[probe]
    errors = deploycheck.policy_errors(docs)
    assert errors == [f"Deployment/rewards-api container api: serves ports but has no {probe}"]


def test_a_worker_without_probes_needs_a_reason(rendered: dict[str, list[Doc]]) -> None:
    """A process with no HTTP port may go unprobed only with a reasoned checkov skip per probe."""
    docs = mutated(rendered)
    worker = one(docs, "Deployment", "rewards-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    for field in ("ports", "startupProbe", "livenessProbe", "readinessProbe"):
        container.pop(field, None)
    reason = "no HTTP server in this process, so nothing to probe"
    worker["metadata"]["annotations"] = {"checkov.io/skip1": f"CKV_K8S_8={reason}"}
    errors = deploycheck.policy_errors(docs)
    assert len(errors) == 1
    assert "no readinessProbe" in errors[0]
    worker["metadata"]["annotations"]["checkov.io/skip2"] = "CKV_K8S_9"
    errors = deploycheck.policy_errors(docs)
    assert any("must read '<CHECK_ID>=<reason>'" in e for e in errors), errors
    worker["metadata"]["annotations"]["checkov.io/skip2"] = f"CKV_K8S_9={reason}"
    assert deploycheck.policy_errors(docs) == []


def test_a_worker_serving_its_health_port_without_a_probe_fails(rendered: dict[str, list[Doc]]) -> None:
    docs = mutated(rendered)
    scheduler = one(docs, "Deployment", "content-scheduler")
    del scheduler["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    errors = deploycheck.policy_errors(docs)
    assert errors == [
        "Deployment/content-scheduler container scheduler: serves ports but has no livenessProbe"
    ]


# ---------------------------------------------------------------- running as root


@pytest.mark.parametrize(
    ("level", "field", "value"),
    [
        ("container", "runAsUser", 0),
        ("container", "runAsNonRoot", False),
        ("pod", "runAsUser", 0),
        ("pod", "runAsNonRoot", False),
    ],
)
def test_a_container_running_as_root_fails(
    rendered: dict[str, list[Doc]], level: str, field: str, value: Any
) -> None:
    docs = mutated(rendered)
    job = one(docs, "Job", "segments-migrate")
    spec = job["spec"]["template"]["spec"]
    target = spec["securityContext"] if level == "pod" else spec["containers"][0]["securityContext"]
    target[field] = value
    errors = deploycheck.policy_errors(docs)
    assert errors
    assert all("Job/segments-migrate" in e for e in errors), errors


def test_a_container_that_inherits_root_fails(rendered: dict[str, list[Doc]]) -> None:
    """No runAsNonRoot anywhere: the image's USER would decide, which the manifests must not leave open."""
    docs = mutated(rendered, "dev")
    spec = one(docs, "Deployment", "content-scheduler")["spec"]["template"]["spec"]
    del spec["securityContext"]["runAsNonRoot"]
    del spec["containers"][0]["securityContext"]["runAsNonRoot"]
    errors = deploycheck.policy_errors(docs)
    assert any("runAsNonRoot must be true" in e for e in errors), errors


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("readOnlyRootFilesystem", False, "readOnlyRootFilesystem"),
        ("allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
        ("capabilities", {"drop": ["NET_RAW"]}, "drop ALL"),
    ],
)
def test_other_pod_hardening_is_enforced(
    rendered: dict[str, list[Doc]], field: str, value: Any, message: str
) -> None:
    docs = mutated(rendered)
    api_container(docs)["securityContext"][field] = value
    errors = deploycheck.policy_errors(docs)
    assert any(message in e for e in errors), errors


# ---------------------------------------------------------------- checkov


CHECKOV = ROOT / ".venv-deploy" / "bin" / "checkov"


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is installed by deploy/check.sh into .venv-deploy/")
def test_checkov_fails_a_root_container_too(rendered: dict[str, list[Doc]], tmp_path: Path) -> None:
    docs = mutated(rendered)
    job = one(docs, "Job", "rewards-migrate")
    job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["runAsNonRoot"] = False
    container["securityContext"]["runAsUser"] = 0
    proc = subprocess.run(
        [
            str(CHECKOV),
            "--config-file",
            str(DEPLOY / "checkov.yaml"),
            "--framework",
            "kubernetes",
            "-f",
            str(write(tmp_path, [job])),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "CKV_K8S_23" in proc.stdout  # "Minimize the admission of root containers"
