#!/usr/bin/env bash
# make deploy-check: render every overlay and prove it valid, offline.
#
#   1. kubectl kustomize deploy/overlays/{dev,prod} (and the deploy/ops Job template, filled in)
#   2. deploy/generate.py --check: the generated manifests match their table and the event contracts
#   3. deploy/deploycheck.py: core kinds with kubernetes-validate --strict -k 1.31, custom resources
#      with check-jsonschema against deploy/schemas/, and Meadow's pod security and probe policy
#   4. checkov (security lint) on the rendered manifests and the Dockerfile, from its own pinned
#      environment .venv-deploy/ (deploy/requirements.lock), installed on first use
#
# Needs: `make install` done (.venv), kubectl >= 1.27 (bundles kustomize v5), uv. Only step 4's
# first run reaches the network (the package registry); everything else is offline.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${MEADOW_PYTHON:-$ROOT/.venv/bin/python}"
DEPLOY_VENV="$ROOT/.venv-deploy"
LOCK="deploy/requirements.lock"
start=$SECONDS

die() { echo "deploy-check: $*" >&2; exit 2; }
step() { echo "deploy-check: $*"; }

command -v kubectl >/dev/null 2>&1 || die "kubectl not found on PATH. Install the kubectl client (>= 1.27; it bundles kustomize v5) — e.g. the kubectl package from your distribution or the Kubernetes release binaries — then re-run."
kubectl kustomize --help >/dev/null 2>&1 || die "this kubectl has no 'kustomize' subcommand; install kubectl >= 1.27."
[ -x "$PY" ] || die "$PY not found: run 'make install' first."
command -v uv >/dev/null 2>&1 || die "uv not found on PATH (needed to install checkov into .venv-deploy/)."

OUT="$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

step "generated manifests up to date"
"$PY" deploy/generate.py --check

for overlay in dev prod; do
  step "render overlays/$overlay"
  kubectl kustomize "deploy/overlays/$overlay" > "$OUT/$overlay.yaml"
done
sed -e 's/\${TOPIC}/commerce.orders/g' -e 's/\${SERVICE}/rewards/g' deploy/ops/dlq-redrive.yaml \
  | sed -e 's/^  generateName: meadow-dlq-redrive-$/  name: meadow-dlq-redrive-example\n  namespace: meadow/' > "$OUT/ops.yaml"

step "schemas (kubernetes-validate, check-jsonschema) and policy"
"$PY" deploy/deploycheck.py "$OUT/dev.yaml" "$OUT/prod.yaml" "$OUT/ops.yaml"

want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ ! -x "$DEPLOY_VENV/bin/checkov" ] || [ "$(cat "$DEPLOY_VENV/.lock-sha256" 2>/dev/null)" != "$want" ]; then
  step "installing checkov into .venv-deploy/ from $LOCK"
  uv venv --quiet --allow-existing --python "$PY" "$DEPLOY_VENV"
  uv pip sync --quiet --python "$DEPLOY_VENV/bin/python" "$LOCK"
  echo "$want" > "$DEPLOY_VENV/.lock-sha256"
fi

step "checkov (settings and reasons for skipped checks: deploy/checkov.yaml)"
# BC_SKIP_MAPPING: no download of the check-to-guideline mapping; no API key, so nothing is uploaded.
BC_SKIP_MAPPING=TRUE "$DEPLOY_VENV/bin/checkov" --config-file deploy/checkov.yaml \
  -f "$OUT/dev.yaml" -f "$OUT/prod.yaml" -f "$OUT/ops.yaml" -f Dockerfile

step "OK: dev and prod overlays valid ($((SECONDS - start)) s)"
