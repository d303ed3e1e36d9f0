"""Validate rendered Kubernetes manifests offline: schemas for every kind, plus Meadow's own policy.

    python deploy/deploycheck.py [--schemas deploy/schemas] rendered.yaml [more.yaml …]

1. Core kinds (Deployment, Service, NetworkPolicy, …) go through `kubernetes-validate --strict -k 1.31`.
2. Custom resources are split one document per file, grouped by kind, and checked with
   `check-jsonschema` against `<schemas>/<group>/<kind>_<version>.json`; a kind with no schema file fails.
3. The policy below (`policy_errors`) holds for every pod Meadow runs: non-root with a numeric UID,
   read-only root filesystem with /tmp on an emptyDir, no privilege escalation, ALL capabilities
   dropped, RuntimeDefault seccomp, no service account token, requests and limits, a pinned image, and
   liveness and readiness probes on long-running containers (a container with no HTTP server may go
   without only if the workload carries checkov skip annotations for CKV_K8S_8 and CKV_K8S_9 with a
   reason). Every `checkov.io/skip*` annotation must give a reason.

Exit status 0 when everything passes, 1 with one line per problem otherwise. The functions are what
tests/deploy uses; deploy/check.sh runs this file on each rendered overlay and then checkov.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.31"
PARALLEL = 3  # subprocesses at once (check-jsonschema spends its time starting up)
SCHEMAS = Path(__file__).resolve().parent / "schemas"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")
SKIP_VALUE = re.compile(r"^(CKV2?_[A-Z0-9]+_\d+)=(.+)$", re.S)

Doc = dict[str, Any]
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# ---------------------------------------------------------------- loading and splitting


def load_documents(path: Path) -> list[Doc]:
    return load_documents_from_text(path.read_text())


def load_documents_from_text(text: str) -> list[Doc]:
    return [d for d in yaml.load_all(text, Loader=Loader) if d]


def describe(doc: Doc) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


def api_group(doc: Doc) -> tuple[str, str]:
    api_version = str(doc.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    return group, version


def is_custom_resource(doc: Doc) -> bool:
    group, _ = api_group(doc)
    # built-in groups have no dot ("apps", "batch", "" for core) or end in .k8s.io
    return "." in group and not group.endswith(".k8s.io")


def schema_path(doc: Doc, schemas: Path) -> Path:
    group, version = api_group(doc)
    return schemas / group / f"{str(doc.get('kind', '')).lower()}_{version}.json"


def tool(name: str) -> str:
    """A console script from the interpreter's own environment first (the project's venv), then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"deploy-check: {name} not found; run `make install` first")
    return found


def _run(cmd: list[str]) -> tuple[int, str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


# ---------------------------------------------------------------- schema validation


def validate_core(docs: list[Doc], workdir: Path, k8s_version: str = KUBERNETES_VERSION) -> list[str]:
    core = [d for d in docs if not is_custom_resource(d)]
    if not core:
        return []
    path = workdir / "core.yaml"
    path.write_text(yaml.dump_all(core, Dumper=Dumper, sort_keys=False))
    code, out = _run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", k8s_version, str(path)])
    if code == 0:
        return []
    return [f"kubernetes-validate: {line}" for line in out.splitlines() if line.strip()] or [
        f"kubernetes-validate exited {code}"
    ]


def validate_custom(docs: list[Doc], workdir: Path, schemas: Path = SCHEMAS) -> list[str]:
    """One check-jsonschema run per kind (it takes one schema per run and one document per file)."""
    errors: list[str] = []
    by_schema: dict[Path, list[Path]] = defaultdict(list)
    for index, doc in enumerate(d for d in docs if is_custom_resource(d)):
        schema = schema_path(doc, schemas)
        if not schema.is_file():
            errors.append(
                f"{describe(doc)}: no schema for {doc.get('apiVersion')} {doc.get('kind')} ({schema})"
            )
            continue
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", str((doc.get("metadata") or {}).get("name", "unnamed")))
        target = workdir / "cr" / schema.parent.name / schema.stem / f"{index:03d}-{name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.dump(doc, Dumper=Dumper, sort_keys=False))
        by_schema[schema].append(target)

    def run(item: tuple[Path, list[Path]]) -> list[str]:
        schema, files = item
        code, out = _run([tool("check-jsonschema"), "--schemafile", str(schema), *map(str, files)])
        if code == 0:
            return []
        label = f"{schema.parent.name}/{schema.name}"
        return [f"check-jsonschema {label}: {line.strip()}" for line in out.splitlines() if line.strip()]

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for result in pool.map(run, sorted(by_schema.items())):
            errors += result
    return errors


# ---------------------------------------------------------------- policy


def pod_spec(doc: Doc) -> Doc | None:
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    if kind in WORKLOAD_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def checkov_skips(doc: Doc) -> tuple[dict[str, str], list[str]]:
    """The checks a resource's annotations skip (id → reason), and annotations that give no reason."""
    skips: dict[str, str] = {}
    bad: list[str] = []
    for key, value in ((doc.get("metadata") or {}).get("annotations") or {}).items():
        if not SKIP_ANNOTATION.match(key):
            continue
        match = SKIP_VALUE.match(str(value))
        if not match or len(match.group(2).strip()) < 10:
            bad.append(f"{describe(doc)}: annotation {key}={value!r} must read '<CHECK_ID>=<reason>'")
        else:
            skips[match.group(1)] = match.group(2).strip()
    return skips, bad


def _containers(spec: Doc) -> Iterator[tuple[str, Doc]]:
    for field in ("initContainers", "containers"):
        for c in spec.get(field) or []:
            yield field, c


def policy_errors(docs: Iterable[Doc]) -> list[str]:
    errors: list[str] = []
    for doc in docs:
        skips, bad = checkov_skips(doc)
        errors += bad
        spec = pod_spec(doc)
        if spec is None:
            continue
        where = describe(doc)
        pod_sc = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            errors.append(f"{where}: automountServiceAccountToken must be false")
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host):
                errors.append(f"{where}: {host} must not be set")
        if pod_sc.get("runAsNonRoot") is not True:
            errors.append(f"{where}: pod securityContext.runAsNonRoot must be true")
        if pod_sc.get("runAsUser") == 0 or pod_sc.get("runAsGroup") == 0:
            errors.append(f"{where}: pod runs as root (runAsUser/runAsGroup 0)")
        pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        for field, c in _containers(spec):
            cw = f"{where} container {c.get('name')}"
            sc = c.get("securityContext") or {}
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                errors.append(f"{cw}: runAsNonRoot must be true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                errors.append(f"{cw}: runs as root (runAsUser 0)")
            if sc.get("runAsGroup", pod_sc.get("runAsGroup")) == 0:
                errors.append(f"{cw}: runs with group root (runAsGroup 0)")
            if sc.get("privileged"):
                errors.append(f"{cw}: privileged")
            if sc.get("allowPrivilegeEscalation") is not False:
                errors.append(f"{cw}: allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                errors.append(f"{cw}: readOnlyRootFilesystem must be true")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                errors.append(f"{cw}: capabilities must drop ALL")
            if caps.get("add"):
                errors.append(f"{cw}: adds capabilities {caps['add']}")
            if (sc.get("seccompProfile") or {}).get("type", pod_seccomp) != "RuntimeDefault":
                errors.append(f"{cw}: seccompProfile must be RuntimeDefault")
            mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
            if "emptyDir" not in volumes.get(mounts.get("/tmp"), {}):
                errors.append(f"{cw}: needs an emptyDir at /tmp (the root filesystem is read-only)")
            res = c.get("resources") or {}
            for section in ("requests", "limits"):
                for key in ("cpu", "memory"):
                    if key not in (res.get(section) or {}):
                        errors.append(f"{cw}: resources.{section}.{key} missing")
            image = str(c.get("image", ""))
            last = image.rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
                errors.append(f"{cw}: image {image!r} must be pinned to a tag or digest (not latest)")
            if field == "containers" and doc.get("kind") in LONG_RUNNING:
                for probe, check in (("livenessProbe", "CKV_K8S_8"), ("readinessProbe", "CKV_K8S_9")):
                    if c.get(probe):
                        continue
                    if c.get("ports"):
                        errors.append(f"{cw}: serves ports but has no {probe}")
                    elif check not in skips:
                        errors.append(
                            f"{cw}: no {probe} (a process without an HTTP server needs a "
                            f"checkov.io/skip annotation for {check} saying why)"
                        )
    return errors


# ---------------------------------------------------------------- entry points


def check_documents(docs: list[Doc], schemas: Path = SCHEMAS) -> list[str]:
    """Every check on a list of documents (from one or more rendered overlays)."""
    with tempfile.TemporaryDirectory(prefix="deploycheck-") as tmp:
        work = Path(tmp)
        with ThreadPoolExecutor(max_workers=1) as pool:
            core = pool.submit(validate_core, docs, work)
            custom = validate_custom(docs, work, schemas)
            return core.result() + custom + policy_errors(docs)


def check_files(paths: Iterable[Path], schemas: Path = SCHEMAS) -> list[str]:
    docs: list[Doc] = []
    errors: list[str] = []
    for path in paths:
        loaded = load_documents(path)
        if not loaded:
            errors.append(f"{path}: no documents")
        docs += loaded
    return errors + check_documents(docs, schemas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", type=Path, default=SCHEMAS)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    errors = check_files(args.files, args.schemas)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"deploy-check: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    names = ", ".join(p.name for p in args.files)
    print(f"deploy-check: {names}: every document valid, policy holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
