"""The rendered overlays agree with the code: settings, topics, entry points, ACLs, HA shape."""

from __future__ import annotations

import importlib.util
import re
import shlex
from typing import Any

import pytest
from deploy_helpers import DEPLOY, OVERLAYS, ROOT, find, one
from pydantic import SecretStr

from meadow_contracts import ALL_TOPICS
from meadow_contracts.topics import DLQ_SUFFIX
from meadow_runtime.settings import Settings

Doc = dict[str, Any]
SERVICES = ("membership", "content", "rewards", "segments")

# DESIGN.md §3 "Who listens", written out independently of deploy/generate.py's table.
CONSUMES = {
    "segments": {"commerce.orders", "commerce.customers", "membership", "content", "rewards"},
    "membership": {"segments", "rewards"},
    "rewards": {"commerce.orders", "content", "membership"},
    "content": {"membership", "segments", "rewards"},
}
PRODUCES = {
    "segments": {"segments", "commerce.orders", "commerce.customers"},  # + HTTP ingest of commerce events
    "membership": {"membership"},
    "rewards": {"rewards"},
    "content": {"content"},
}
# Settings production must set even though they have a development default.
PROD_REQUIRED = {
    "ENVIRONMENT",
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "JWT_SECRET",
}
NOT_FROM_ENV = {"service_name"}  # set by the entry point


def test_generated_files_are_up_to_date() -> None:
    import generate

    assert generate.main(["--check"]) == 0, "run: python deploy/generate.py"


def meadow_workloads(docs: list[Doc]) -> list[Doc]:
    return [
        d
        for d in docs
        if d["kind"] in {"Deployment", "Job"}
        and d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "meadow"
    ]


def containers(doc: Doc) -> list[Doc]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def provided_env(container: Doc, docs: list[Doc]) -> dict[str, Any]:
    """Env var name → literal value, or the secretKeyRef/configMapKeyRef that provides it."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"unexpected envFrom {source}"
        env.update(one(docs, "ConfigMap", ref["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def service_of(doc: Doc) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_the_services_read_is_provided(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    fields = {name.upper() for name in Settings.model_fields if name not in NOT_FROM_ENV}
    required = {
        name.upper() for name, info in Settings.model_fields.items() if info.is_required()
    } | PROD_REQUIRED
    workloads = meadow_workloads(docs)
    components = {(service_of(d), d["metadata"]["labels"]["app.kubernetes.io/component"]) for d in workloads}
    for service in SERVICES:
        assert {(service, "api"), (service, "worker"), (service, "migration")} <= components
    assert ("content", "scheduler") in components

    for workload in workloads:
        service = service_of(workload)
        for container in containers(workload):
            where = f"{overlay}: {workload['metadata']['name']}/{container['name']}"
            env = provided_env(container, docs)
            assert required <= env.keys(), f"{where} lacks {sorted(required - env.keys())}"
            unknown = env.keys() - fields
            assert not unknown, f"{where} sets {sorted(unknown)}, which Settings does not read (typo?)"

            # the references point where the operators put the credentials
            assert env["DATABASE_URL"] == {"secretKeyRef": {"name": f"{service}-db-app", "key": "uri"}}
            assert env["KAFKA_SASL_USERNAME"] == f"meadow-{service}"
            assert env["KAFKA_SASL_PASSWORD"] == {
                "secretKeyRef": {"name": f"meadow-{service}", "key": "password"}
            }
            assert find(docs, "KafkaUser", f"meadow-{service}")
            assert env["JWT_SECRET"]["secretKeyRef"]["name"].startswith("meadow-jwt")

            # and the literal values are ones Settings accepts (secrets replaced by stand-ins)
            values = {k.lower(): v if isinstance(v, str) else "stand-in-secret-value" for k, v in env.items()}
            settings = Settings.model_validate(values)
            assert settings.environment == ("prod" if overlay == "prod" else "dev")
            assert settings.kafka_security_protocol.startswith("SASL_")
            assert isinstance(settings.kafka_sasl_password, SecretStr)
            if overlay == "prod":
                assert settings.kafka_security_protocol == "SASL_SSL", where
            if container["args"][0] != "migrate":  # the only command that never connects to Kafka
                assert_kafka_ca_mounted(settings, container, workload, where)


KAFKA_CA_SECRET = "meadow-cluster-ca-cert"  # Strimzi: <cluster>-cluster-ca-cert, key ca.crt


def assert_kafka_ca_mounted(settings: Settings, container: Doc, workload: Doc, where: str) -> None:
    """A TLS listener needs KAFKA_SSL_CAFILE, and the file must be Strimzi's CA mounted read-only."""
    if settings.kafka_security_protocol not in {"SSL", "SASL_SSL"}:
        return
    cafile = settings.kafka_ssl_cafile
    assert cafile, f"{where}: {settings.kafka_security_protocol} without KAFKA_SSL_CAFILE"
    directory, _, filename = cafile.rpartition("/")
    (mount,) = [m for m in container.get("volumeMounts", []) if m["mountPath"] == directory] or [None]
    assert mount is not None, f"{where}: nothing mounted at {directory} for KAFKA_SSL_CAFILE={cafile}"
    assert mount.get("readOnly") is True, where
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == KAFKA_CA_SECRET, where
    assert {"key": "ca.crt", "path": filename} in secret["items"], where


def test_the_ops_job_trusts_the_kafka_ca(ops_job: Doc) -> None:
    (container,) = containers(ops_job)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    values = {k.lower(): v if isinstance(v, str) else "stand-in-secret-value" for k, v in env.items()}
    settings = Settings.model_validate(values)
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert_kafka_ca_mounted(settings, container, ops_job, "ops job")


def test_database_secrets_exist_or_are_made_by_cloudnativepg(rendered: dict[str, list[Doc]]) -> None:
    prod, dev = rendered["prod"], rendered["dev"]
    for service in SERVICES:
        # CloudNativePG writes `<cluster>-app` (keys username, password, uri, …) for each prod cluster
        cluster = one(prod, "Cluster", f"{service}-db")
        assert cluster["spec"]["bootstrap"]["initdb"]["database"] == service
        # dev: one shared cluster; the overlay supplies the per-service secret the role password comes from
        secret = one(dev, "Secret", f"{service}-db-app")
        assert {"username", "password", "uri"} <= secret["data"].keys()
    (shared,) = find(dev, "Cluster")
    assert {r["passwordSecret"]["name"] for r in shared["spec"]["managed"]["roles"]} == {
        f"{s}-db-app" for s in SERVICES
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_contract_topic_has_a_kafka_topic(rendered: dict[str, list[Doc]], overlay: str) -> None:
    topics = {d["spec"]["topicName"]: d for d in find(rendered[overlay], "KafkaTopic")}
    assert set(topics) == set(ALL_TOPICS)
    for name, topic in topics.items():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "meadow"
        assert int(topic["spec"]["config"]["retention.ms"]) >= 7 * 86_400_000, name
        if overlay == "prod":
            assert topic["spec"]["partitions"] == 12
            assert topic["spec"]["replicas"] == 3
            assert topic["spec"]["config"]["min.insync.replicas"] == 2


def acl_map(user: Doc) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in user["spec"]["authorization"]["acls"]:
        resource = rule["resource"]
        assert resource.get("patternType", "literal") == "literal", rule
        assert rule.get("type", "allow") == "allow"
        out.setdefault((resource["type"], resource["name"]), set()).update(rule["operations"])
    return out


def test_kafka_acls_match_who_produces_and_consumes_what(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    for service in SERVICES:
        acls = acl_map(one(docs, "KafkaUser", f"meadow-{service}"))
        reads = {name for (kind, name), ops in acls.items() if kind == "topic" and "Read" in ops}
        writes = {name for (kind, name), ops in acls.items() if kind == "topic" and "Write" in ops}
        groups = {name for (kind, name) in acls if kind == "group"}
        assert reads == CONSUMES[service], service
        assert writes == PRODUCES[service] | {t + DLQ_SUFFIX for t in CONSUMES[service]}, service
        assert groups == {service}, service
        assert all(ops <= {"Read", "Write", "Describe"} for ops in acls.values()), service
        # KEDA measures the lag of the same group, with the same credentials
        scaled = one(docs, "ScaledObject", f"{service}-worker")
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == service
        auth = one(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        assert auth["spec"]["secretTargetRef"] == [
            {"parameter": "password", "name": f"meadow-{service}", "key": "password"},
            {"parameter": "ca", "name": KAFKA_CA_SECRET, "key": "ca.crt"},
        ]
        # TLS like the services' own clients; KEDA rejects `tls` set in both places, so only here
        assert trigger["metadata"]["tls"] == "enable"
        assert trigger["metadata"]["sasl"] == "scram_sha512"
        assert not any(ref["parameter"] in {"tls", "sasl"} for ref in auth["spec"]["secretTargetRef"])
    # dlq-redrive moves <topic>.dlq back onto <topic>: the ops user reads every DLQ and writes every topic
    ops = acl_map(one(docs, "KafkaUser", "meadow-ops"))
    main_topics = {t for t in ALL_TOPICS if not t.endswith(DLQ_SUFFIX)}
    assert {n for (k, n), o in ops.items() if k == "topic" and "Read" in o} == {
        t + DLQ_SUFFIX for t in main_topics
    }
    assert {n for (k, n), o in ops.items() if k == "topic" and "Write" in o} == main_topics
    from meadow_runtime import dlq

    assert {n for (k, n) in ops if k == "group"} == {dlq.REDRIVE_GROUP}


def command_lines(rendered: dict[str, list[Doc]], ops_job: Doc) -> list[list[str]]:
    lines = []
    for docs in rendered.values():
        for workload in meadow_workloads(docs):
            lines += [list(map(str, c["args"])) for c in containers(workload)]
    lines += [list(map(str, c["args"])) for c in containers(ops_job)]
    readme = (DEPLOY / "README.md").read_text()
    # `kubectl exec … -- meadow replay …` and the like in the README's code blocks
    lines += [shlex.split(m)[1:] for m in re.findall(r" -- (meadow [^\n`\\]+)", readme)]
    return lines


def test_every_entry_point_named_in_the_manifests_exists(
    rendered: dict[str, list[Doc]], ops_job: Doc
) -> None:
    if importlib.util.find_spec("meadow_runtime.cli") is None:
        pytest.skip("meadow_runtime.cli not written yet")
    from meadow_runtime import cli

    lines = command_lines(rendered, ops_job)
    assert len(lines) > 20
    seen = set()
    for args in lines:
        command = args[0]
        assert command in cli.COMMANDS, f"`meadow {' '.join(args)}`: no command {command!r}"
        seen.add(command)
        if command == "dlq-redrive":
            service = args[args.index("--service") + 1]
            assert args[1] in ALL_TOPICS, args
            assert not args[1].endswith(DLQ_SUFFIX), args
        else:
            service = args[1]
        if "<" in service:  # README placeholder such as <service>
            continue
        assert service in cli.SERVICES, f"`meadow {' '.join(args)}`: unknown service"
        if command == "scheduler":
            assert service == "content", "only content has a scheduler"
        if "<" not in " ".join(args):
            cli.build_parser().parse_args(args)  # exits (SystemExit) on a bad argument
    assert {"api", "worker", "scheduler", "migrate", "dlq-redrive", "replay"} <= seen
    assert set(cli.SERVICES) == set(SERVICES)


def test_the_image_runs_the_meadow_console_script() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["meadow"]' in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert 'meadow = "meadow_runtime.cli:main"' in (ROOT / "libs/runtime/pyproject.toml").read_text()


def test_prod_is_highly_available(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    (partitions,) = {topic["spec"]["partitions"] for topic in find(docs, "KafkaTopic")}
    (consumers_per_worker,) = {
        int(config["data"]["CONSUMER_CONCURRENCY"])
        for config in find(docs, "ConfigMap")
        if "CONSUMER_CONCURRENCY" in config.get("data", {})
    }
    for service in SERVICES:
        hpa = one(docs, "HorizontalPodAutoscaler", f"{service}-api")
        assert hpa["spec"]["minReplicas"] >= 3
        for component in ("api", "worker"):
            pdb = one(docs, "PodDisruptionBudget", f"{service}-{component}")
            assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == service
            deployment = one(docs, "Deployment", f"{service}-{component}")
            keys = {
                c["topologyKey"] for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
            }
            assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        # At full scale every consumer of the group owns a partition: no idle ones, none missing.
        max_workers = one(docs, "ScaledObject", f"{service}-worker")["spec"]["maxReplicaCount"]
        assert max_workers * consumers_per_worker == partitions
        cluster = one(docs, "Cluster", f"{service}-db")
        assert cluster["spec"]["instances"] == 3
        assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"]
        assert (
            one(docs, "ScheduledBackup", f"{service}-db-daily")["spec"]["cluster"]["name"] == f"{service}-db"
        )
    pools = {p["metadata"]["name"]: p["spec"] for p in find(docs, "KafkaNodePool")}
    assert pools["controller"]["roles"] == ["controller"]
    assert pools["controller"]["replicas"] == 3
    assert pools["broker"]["roles"] == ["broker"]
    assert pools["broker"]["replicas"] == 3


def test_dev_is_small(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["dev"]
    assert all(h["spec"]["minReplicas"] == 1 for h in find(docs, "HorizontalPodAutoscaler"))
    assert all(s["spec"]["minReplicaCount"] == 1 for s in find(docs, "ScaledObject"))
    assert len(find(docs, "Cluster")) == 1
    assert not find(docs, "PodDisruptionBudget")
    (pool,) = find(docs, "KafkaNodePool")
    assert pool["spec"]["replicas"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_default_deny_and_scope_each_service(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    deny = one(docs, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert one(docs, "NetworkPolicy", "default-deny-egress-meadow")["spec"].get("egress") is None
    dns = one(docs, "NetworkPolicy", "allow-dns-egress")["spec"]["egress"]
    assert {p["port"] for rule in dns for p in rule["ports"]} == {53}
    clusters = find(docs, "Cluster")
    for service in SERVICES:
        egress = one(docs, "NetworkPolicy", f"{service}-egress")["spec"]["egress"]
        db_rules = [r for r in egress if r["ports"] == [{"protocol": "TCP", "port": 5432}]]
        (db_rule,) = db_rules
        assert db_rule["to"] == [{"podSelector": {"matchLabels": {f"db.meadow.io/{service}": "true"}}}]
        # exactly the clusters holding this service's database carry that label
        holders = [
            c for c in clusters if c["spec"]["inheritedMetadata"]["labels"].get(f"db.meadow.io/{service}")
        ]
        assert len(holders) == 1
        ingress = one(docs, "NetworkPolicy", f"{service}-api-ingress")["spec"]["ingress"]
        namespaces = {
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for r in ingress
            for p in r["from"]
        }
        assert namespaces == {"ingress-nginx", "monitoring"}
    if overlay == "prod":
        for service in SERVICES:
            policy = one(docs, "NetworkPolicy", f"{service}-db-ingress")["spec"]["ingress"][0]
            assert policy["from"][0]["podSelector"]["matchExpressions"][0]["values"] == [service]


def test_ingress_routes_each_service(rendered: dict[str, list[Doc]]) -> None:
    for docs in rendered.values():
        (ingress,) = find(docs, "Ingress")
        paths = {
            p["path"].split("(")[0]: p["backend"]["service"]["name"]
            for rule in ingress["spec"]["rules"]
            for p in rule["http"]["paths"]
        }
        assert paths == {f"/{s}": f"{s}-api" for s in SERVICES}
        services = {d["metadata"]["name"] for d in find(docs, "Service")}
        assert set(paths.values()) <= services


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and In/NotIn/Exists/DoesNotExist) against labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def takes_health_port(command: str) -> bool:
    from meadow_runtime import cli

    try:
        cli.build_parser().parse_args([command, "content", "--health-port", "9000"])
    except SystemExit:
        return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_with_a_health_port_are_probed_and_scraped(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """Every worker/scheduler Deployment whose command has --health-port uses it: probes on /healthz,
    a ServiceMonitor on /metrics, and a NetworkPolicy letting Prometheus in. The others may not pass it
    (argparse would stop the process at once)."""
    docs = rendered[overlay]
    assert takes_health_port("scheduler")
    probed = set()
    for deployment in find(docs, "Deployment"):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        if pod_labels.get("app.kubernetes.io/component") not in {"worker", "scheduler"}:
            continue
        name = deployment["metadata"]["name"]
        (container,) = containers(deployment)
        args = list(map(str, container["args"]))
        if not takes_health_port(args[0]):
            assert "--health-port" not in args, f"{name}: `meadow {args[0]}` has no --health-port"
            continue
        assert "--health-port" in args, f"{name}: `meadow {args[0]}` can serve /healthz: pass --health-port"
        probed.add(name)
        port = int(args[args.index("--health-port") + 1])
        assert container["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}], name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, (name, probe)
        annotations = deployment["metadata"].get("annotations", {})
        assert not [k for k in annotations if k.startswith("checkov.io/skip")], f"{name}: stale probe skips"

        (service,) = [
            s
            for s in find(docs, "Service")
            if s["spec"].get("selector")
            and selects({"matchLabels": s["spec"]["selector"]}, pod_labels)
            and any(p["targetPort"] == "metrics" for p in s["spec"]["ports"])
        ]
        (monitor,) = [
            m
            for m in find(docs, "ServiceMonitor")
            if selects(m["spec"]["selector"], service["metadata"]["labels"])
        ]
        assert {"port": "metrics", "path": "/metrics"}.items() <= monitor["spec"]["endpoints"][0].items(), (
            name
        )

        allowed = [
            rule
            for policy in find(docs, "NetworkPolicy")
            if "Ingress" in policy["spec"]["policyTypes"]
            and selects(policy["spec"]["podSelector"], pod_labels)
            for rule in policy["spec"].get("ingress", [])
            if {"protocol": "TCP", "port": port} in rule.get("ports", [])
        ]
        sources = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in allowed
            for peer in rule["from"]
        }
        assert sources == {"monitoring"}, f"{name}: port {port} open to {sources or 'nobody'}"
    assert "content-scheduler" in probed
