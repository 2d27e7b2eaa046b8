"""infra/k8s: every overlay renders with kustomize and holds up to the cluster's schemas."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
from deploy_support import INTERNAL_PORTS, K8S, OVERLAYS, REPO, SERVICES, kustomize_build, run

# The oldest Kubernetes we support and the newest schema the validator ships.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
PLACEHOLDERS = ("change-me", "dev-only")
# Which backing servers each service talks to, by port (DESIGN.md).
BACKING_PORTS = {
    "auth": {27017, 5672, 6379},
    "tasks": {27017, 5672, 6379},
    "analytics": {27017, 5672, 6379},
    "gateway": {6379},
}
ALL_BACKING_PORTS = {27017, 5671, 5672, 6379, 6380}
OTLP_HTTP = 4318
INGRESS_NAMESPACE = "ingress-nginx"

Doc = dict[str, Any]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    [found] = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return found


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def container(deployment: Doc) -> Doc:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c


# ---------------------------------------------------------------------------- rendering


def test_there_are_dev_and_prod_overlays() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", [*OVERLAYS, "base"])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_overlay_validates_strictly(
    rendered: dict[str, list[Doc]], overlay: str, version: str
) -> None:
    errors = []
    for doc in rendered[overlay]:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {e.message} at {e.path}")
    assert not errors, "\n".join(errors)


def test_strict_validation_catches_a_misspelled_field() -> None:
    # Guards the guard: a typo in a probe must not pass as an unknown, ignored field.
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i:1", "readinesProbe": {}}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_names_are_unique(rendered: dict[str, list[Doc]], overlay: str) -> None:
    keys = Counter((d["kind"], d["metadata"]["name"]) for d in rendered[overlay])
    assert [k for k, n in keys.items() if n > 1] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lives_in_one_namespace_under_the_restricted_standard(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    [ns] = of_kind(rendered[overlay], "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in rendered[overlay]:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == ns["metadata"]["name"], doc["metadata"]


def test_prod_refuses_to_render_without_its_secret_files(kustomize: Path, tmp_path: Path) -> None:
    # The real files are git-ignored; without them nothing (no placeholder) can be applied.
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    for real in (tree / "overlays" / "prod" / "secrets").glob("*.env"):
        real.unlink()
    result = run([kustomize, "build", tree / "overlays" / "prod"])
    assert result.returncode != 0
    assert "secrets/auth.env" in result.stderr


def test_prod_secret_files_are_git_ignored() -> None:
    for name in SERVICES:
        path = f"infra/k8s/overlays/prod/secrets/{name}.env"
        result = subprocess.run(
            ["git", "check-ignore", "-q", path], cwd=REPO, capture_output=True, check=False
        )
        assert result.returncode == 0, f"{path} is not git-ignored"
        example = REPO / f"{path}.example"
        assert example.is_file(), f"{example} is missing"


# ------------------------------------------------------------------------- workloads


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_has_deployment_service_hpa_and_pdb(
    rendered: dict[str, list[Doc]], overlay: str, name: str
) -> None:
    docs = rendered[overlay]
    deployment = one(docs, "Deployment", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()

    service = one(docs, "Service", name)
    assert service["spec"]["selector"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    assert port["port"] == SERVICES[name]
    assert port["targetPort"] == "http"
    assert {"name": "http", "containerPort": SERVICES[name], "protocol": "TCP"} in container(
        deployment
    )["ports"]

    hpa = one(docs, "HorizontalPodAutoscaler", name)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"], "an HPA needs at least one metric"

    pdb = one(docs, "PodDisruptionBudget", name)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # A budget that cannot be met blocks every node drain: keep one pod's worth of slack.
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    else:
        assert pdb["spec"]["maxUnavailable"] >= 1


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_probes_resources_and_rollout(
    rendered: dict[str, list[Doc]], overlay: str, name: str
) -> None:
    deployment = one(rendered[overlay], "Deployment", name)
    c = container(deployment)
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    if "startupProbe" in c:
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    # $(VAR) expands only variables defined earlier in the list; anything else stays literal.
    defined: set[str] = set()
    for e in c.get("env", []):
        for ref in re.findall(r"\$\((\w+)\)", e.get("value", "")):
            assert ref in defined, f"{e['name']} refers to undefined {ref}"
        defined.add(e["name"])
    assert env["TASKMESH_PORT"] == str(SERVICES[name])
    assert env["TASKMESH_INTERNAL_PORT"] == str(INTERNAL_PORTS[name])
    assert env["OTEL_SERVICE_NAME"] == name

    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{kind} missing"
    assert quantity(c["resources"]["requests"]["cpu"]) <= quantity(c["resources"]["limits"]["cpu"])
    assert quantity(c["resources"]["requests"]["memory"]) <= quantity(
        c["resources"]["limits"]["memory"]
    )

    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] not in (0, "0%")
    # The HPA owns the replica count; a fixed one would be reset on every apply.
    assert "replicas" not in deployment["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_run_non_root_on_a_read_only_root(
    rendered: dict[str, list[Doc]], overlay: str, name: str
) -> None:
    pod = one(rendered[overlay], "Deployment", name)["spec"]["template"]["spec"]
    c = container({"spec": {"template": {"spec": pod}}})
    ctx = c["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    tmp = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/tmp"]
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[tmp]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    # The namespace enforces "restricted": a pod that misses any of these is refused at
    # admission, in-cluster backing servers of the dev overlay included.
    for workload in workloads(rendered[overlay]):
        pod = workload["spec"]["template"]["spec"]
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        pod_ctx = pod.get("securityContext", {})
        for c in pod["containers"] + pod.get("initContainers", []):
            ctx = c.get("securityContext", {})
            non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
            seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
            assert non_root is True, f"{where}: runAsNonRoot"
            assert ctx.get("runAsUser", pod_ctx.get("runAsUser")) != 0, f"{where}: uid 0"
            assert ctx.get("allowPrivilegeEscalation") is False, f"{where}: escalation"
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: caps"
            assert not ctx.get("capabilities", {}).get("add"), f"{where}: added caps"
            assert seccomp.get("type") == "RuntimeDefault", f"{where}: seccomp"
            assert not ctx.get("privileged"), f"{where}: privileged"
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), where
        for volume in pod.get("volumes", []):
            assert "hostPath" not in volume, f"{where}: hostPath"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_is_pinned(rendered: dict[str, list[Doc]], overlay: str) -> None:
    for workload in workloads(rendered[overlay]):
        for c in workload["spec"]["template"]["spec"]["containers"]:
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert "@sha256:" in image or (name and tag and tag != "latest" and "/" not in tag), (
                f"{workload['metadata']['name']}: {image} is not pinned"
            )


def test_dev_backing_servers_run_the_same_images_as_compose(
    rendered: dict[str, list[Doc]], compose: Doc
) -> None:
    for workload in workloads(rendered["dev"]):
        name = workload["metadata"]["name"]
        if name in SERVICES:
            continue
        assert container(workload)["image"] == compose["services"][name]["image"], name


def test_prod_runs_more_than_dev(rendered: dict[str, list[Doc]]) -> None:
    for name in SERVICES:
        dev = one(rendered["dev"], "HorizontalPodAutoscaler", name)["spec"]
        prod = one(rendered["prod"], "HorizontalPodAutoscaler", name)["spec"]
        assert prod["minReplicas"] >= 2, "prod must survive losing a pod"
        assert prod["minReplicas"] > dev["minReplicas"]
        assert prod["maxReplicas"] > dev["maxReplicas"]
        dev_req = container(one(rendered["dev"], "Deployment", name))["resources"]["requests"]
        prod_req = container(one(rendered["prod"], "Deployment", name))["resources"]["requests"]
        assert quantity(prod_req["cpu"]) > quantity(dev_req["cpu"])


def test_only_dev_runs_backing_servers_in_cluster(rendered: dict[str, list[Doc]]) -> None:
    dev = {w["metadata"]["name"] for w in workloads(rendered["dev"])}
    prod = {w["metadata"]["name"] for w in workloads(rendered["prod"])}
    assert prod == set(SERVICES)
    assert dev == set(SERVICES) | {"mongo", "rabbitmq", "redis", "jaeger"}


# --------------------------------------------------------------- configuration wiring


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_referenced_config_and_secret_exists(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    existing = {(d["kind"], d["metadata"]["name"]) for d in docs}
    secrets = {d["metadata"]["name"]: d for d in of_kind(docs, "Secret")}
    for workload in workloads(docs):
        for c in workload["spec"]["template"]["spec"]["containers"]:
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in existing
                if "secretRef" in source:
                    assert ("Secret", source["secretRef"]["name"]) in existing
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]].get("data", {}), env["name"]


def env_of(docs: list[Doc], name: str) -> dict[str, str]:
    """The environment a service's container gets from its ConfigMap and Secret."""
    c = container(one(docs, "Deployment", name))
    values: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            values |= one(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
        if "secretRef" in source:
            data = one(docs, "Secret", source["secretRef"]["name"]).get("data", {})
            values |= {k: base64.b64decode(v).decode() for k, v in data.items()}
    values |= {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
    return values


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_gets_exactly_the_backing_urls_it_uses(
    rendered: dict[str, list[Doc]], overlay: str, name: str
) -> None:
    env = env_of(rendered[overlay], name)
    assert env["TASKMESH_HOST"] == "0.0.0.0"
    wanted = {
        "TASKMESH_MONGO_URL": 27017 in BACKING_PORTS[name],
        "TASKMESH_AMQP_URL": 5672 in BACKING_PORTS[name],
        "TASKMESH_REDIS_URL": 6379 in BACKING_PORTS[name],
    }
    for key, needed in wanted.items():
        assert (key in env) is needed, f"{name} {'lacks' if needed else 'must not get'} {key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_urls_point_at_real_services(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    env = env_of(docs, "gateway")
    for name in ("auth", "tasks", "analytics"):
        url = urlsplit(env[f"TASKMESH_{name.upper()}_URL"])
        assert url.hostname == name
        assert url.port in {p["port"] for p in one(docs, "Service", name)["spec"]["ports"]}


def test_environments(rendered: dict[str, list[Doc]]) -> None:
    assert env_of(rendered["prod"], "auth")["TASKMESH_ENV"] == "production"
    dev = env_of(rendered["dev"], "auth")
    assert dev["TASKMESH_ENV"] == "development"
    # dev traces go to its own in-cluster Jaeger.
    otlp = urlsplit(dev["OTEL_EXPORTER_OTLP_ENDPOINT"])
    jaeger_ports = {p["port"] for p in one(rendered["dev"], "Service", "jaeger")["spec"]["ports"]}
    assert otlp.hostname == "jaeger" and otlp.port in jaeger_ports


def _secret(docs: list[Doc], prefix: str) -> dict[str, str]:
    [name] = [
        s["metadata"]["name"]
        for s in of_kind(docs, "Secret")
        if s["metadata"]["name"].startswith(prefix)
    ]
    return {k: base64.b64decode(v).decode() for k, v in one(docs, "Secret", name)["data"].items()}


def test_dev_urls_reach_the_in_cluster_servers_with_their_credentials(
    rendered: dict[str, list[Doc]],
) -> None:
    """Each service reaches MongoDB and RabbitMQ as its own user, never as the root/admin."""
    docs = rendered["dev"]
    backing = _secret(docs, "backing-secrets")
    definitions = json.loads(_secret(docs, "rabbitmq-definitions")["definitions.json"])
    broker_passwords = {user["name"]: user["password"] for user in definitions["users"]}
    for name in ("auth", "tasks", "analytics"):
        env = env_of(docs, name)
        mongo, amqp = (urlsplit(env[f"TASKMESH_{k}_URL"]) for k in ("MONGO", "AMQP"))
        assert (mongo.hostname, mongo.port, mongo.username, mongo.path) == (
            "mongo",
            27017,
            name,
            f"/{name}",
        )
        assert mongo.password == backing[f"MONGO_{name.upper()}_PASSWORD"]
        assert mongo.password != backing["MONGO_INITDB_ROOT_PASSWORD"]
        assert (amqp.hostname, amqp.port, amqp.username) == ("rabbitmq", 5672, name)
        assert amqp.password == broker_passwords[name] != backing["RABBITMQ_DEFAULT_PASS"]
    redis = urlsplit(env_of(docs, "auth")["TASKMESH_REDIS_URL"])
    assert (redis.hostname, redis.port, redis.password) == (
        "redis",
        6379,
        backing["REDIS_PASSWORD"],
    )


def test_dev_servers_create_each_services_user_with_the_local_stacks_grants(
    rendered: dict[str, list[Doc]],
) -> None:
    from taskmesh_local.broker_users import EVENTS_EXCHANGE, GRANTS

    docs = rendered["dev"]
    [init] = [
        c
        for c in of_kind(docs, "ConfigMap")
        if c["metadata"]["name"].startswith("mongo-init-users")
    ]
    compose_script = (REPO / "infra" / "compose" / "mongo" / "init-users.js").read_text()
    assert init["data"]["10-service-users.js"] == compose_script
    mongo = one(docs, "StatefulSet", "mongo")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in mongo["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in mongo["volumes"]}
    init_volume = volumes[mounts["/docker-entrypoint-initdb.d"]]
    assert init_volume["configMap"]["name"] == init["metadata"]["name"]

    definitions = json.loads(_secret(docs, "rabbitmq-definitions")["definitions.json"])
    permissions = {p["user"]: p for p in definitions["permissions"]}
    topics = {p["user"]: p for p in definitions["topic_permissions"]}
    for name, grant in GRANTS.items():
        granted = permissions[name]
        assert (granted["configure"], granted["write"], granted["read"]) == (
            grant.configure,
            grant.write,
            grant.read,
        )
        # The default exchange routes by queue name: write on it reaches any queue.
        assert not re.search(granted["write"], "amq.default"), name
        assert (topics[name]["exchange"], topics[name]["write"], topics[name]["read"]) == (
            EVENTS_EXCHANGE,
            grant.topic_write,
            grant.topic_read,
        )
    rabbit = one(docs, "StatefulSet", "rabbitmq")["spec"]["template"]["spec"]
    paths = {m["mountPath"] for m in rabbit["containers"][0]["volumeMounts"]}
    assert {
        "/etc/rabbitmq/definitions.json",
        "/etc/rabbitmq/conf.d/20-taskmesh-definitions.conf",
    } <= paths


def test_prod_auth_needs_a_key_encryption_key(rendered: dict[str, list[Doc]]) -> None:
    assert "TASKMESH_KEY_ENCRYPTION_KEY" in env_of(rendered["prod"], "auth")
    for name in ("tasks", "analytics", "gateway"):
        assert "TASKMESH_KEY_ENCRYPTION_KEY" not in env_of(rendered["prod"], name)


# --------------------------------------------------------------------------- secrets


def secret_values(doc: Doc) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    return values | dict(doc.get("stringData") or {})


def entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_real(value: str) -> str | None:
    """Why a value looks like a real secret, or None."""
    if "PRIVATE KEY" in value:
        return "a private key"
    candidates = [value]
    for token in re.findall(r"[a-z][a-z0-9+.-]*://[^\s]+", value):
        url = urlsplit(token)
        candidates = [url.password or ""]
        if url.password and not any(p in url.password for p in PLACEHOLDERS):
            return f"URL password {url.password!r} is not a placeholder"
    for candidate in candidates:
        for word in re.findall(r"[A-Za-z0-9+/=_-]{20,}", candidate):
            if entropy(word) > 3.5 and not any(p in word for p in PLACEHOLDERS):
                return f"high-entropy string {word[:6]}..."
    return None


def test_the_secret_detector_flags_real_looking_values() -> None:
    assert looks_real("mongodb://u:S3cr3tP4ss@db:27017/") is not None
    assert looks_real("-----BEGIN " + "PRIVATE KEY-----\nMIIE") is not None
    assert looks_real("kQ9x2LmN7vB4tR8wZ1yC6hJ3fD5sA0gE") is not None
    assert looks_real("mongodb://u:change-me@db.example.com/") is None
    assert looks_real("redis://:dev-only-redis@redis:6379/0") is None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_carries_a_real_looking_value(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    for secret in of_kind(rendered[overlay], "Secret"):
        for key, value in secret_values(secret).items():
            reason = looks_real(value)
            assert reason is None, f"{secret['metadata']['name']}/{key}: {reason}"
            if re.search(r"PASS|SECRET|TOKEN|KEY", key) and value:
                assert any(p in value for p in PLACEHOLDERS), f"{key} is not a placeholder"


def test_no_checked_in_file_under_infra_holds_a_private_key() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "infra"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for path in tracked:
        text = (REPO / path).read_bytes().decode(errors="replace")
        assert "PRIVATE KEY-----" not in text, path


# ------------------------------------------------------------------ network policies


def selects(selector: Doc | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
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


class Peer:
    """One end of a connection: a pod (labels, namespace) or an address outside the cluster."""

    def __init__(self, labels: dict[str, str] | None = None, namespace: str = "") -> None:
        self.labels = labels
        self.namespace = namespace

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


EXTERNAL = Peer()


def peer_matches(rule_peers: list[Doc] | None, peer: Peer, policy_ns: str) -> bool:
    if not rule_peers:
        return True  # no from/to: every peer
    for p in rule_peers:
        if "ipBlock" in p:
            if peer.labels is None:
                return True
            continue
        if peer.labels is None:
            continue
        ns_ok = (
            selects(p["namespaceSelector"], peer.namespace_labels)
            if "namespaceSelector" in p
            else peer.namespace == policy_ns
        )
        pod_ok = selects(p["podSelector"], peer.labels) if "podSelector" in p else True
        if ns_ok and pod_ok:
            return True
    return False


def port_matches(ports: list[Doc] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p or p["port"] == port:
            return True
        if "endPort" in p and p["port"] <= port <= p["endPort"]:
            return True
    return False


def allowed(
    policies: list[Doc], direction: str, pod: Peer, other: Peer, port: int, protocol: str = "TCP"
) -> bool:
    """Whether `pod` may receive from (Ingress) or send to (Egress) `other` on `port`."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    relevant = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], pod.labels or {})
    ]
    if not relevant:
        return True
    for policy in relevant:
        for rule in policy["spec"].get(key) or []:
            if peer_matches(rule.get(peers_key), other, pod.namespace) and port_matches(
                rule.get("ports"), port, protocol
            ):
                return True
    return False


def pod_of(docs: list[Doc], name: str) -> Peer:
    for workload in workloads(docs):
        if workload["metadata"]["name"] == name:
            return Peer(
                workload["spec"]["template"]["metadata"]["labels"],
                workload["metadata"]["namespace"],
            )
    raise AssertionError(f"no workload {name}")


def test_the_policy_evaluator_denies_by_default_and_allows_what_is_listed() -> None:
    ns = "n"
    deny = {"metadata": {"namespace": ns}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    allow = {
        "metadata": {"namespace": ns},
        "spec": {
            "podSelector": {"matchLabels": {"app": "b"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": [{"port": 1}]}
            ],
        },
    }
    a, b, c = Peer({"app": "a"}, ns), Peer({"app": "b"}, ns), Peer({"app": "c"}, ns)
    assert allowed([deny, allow], "Ingress", b, a, 1)
    assert not allowed([deny, allow], "Ingress", b, a, 2)
    assert not allowed([deny, allow], "Ingress", b, c, 1)
    assert not allowed([deny, allow], "Ingress", a, b, 1)
    assert allowed([allow], "Ingress", a, c, 9)  # unselected pods are open without a deny
    assert not allowed([deny, allow], "Ingress", b, Peer({"app": "a"}, "other"), 1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_covers_every_pod_both_ways(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    policies = of_kind(rendered[overlay], "NetworkPolicy")
    assert any(
        p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_reaches_the_services(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    policies = of_kind(docs, "NetworkPolicy")
    ns = pod_of(docs, "gateway").namespace
    controller = Peer({"app.kubernetes.io/name": "ingress-nginx"}, INGRESS_NAMESPACE)
    stranger = Peer({"app": "debug"}, ns)
    elsewhere = Peer({"app": "x"}, "default")
    gateway = pod_of(docs, "gateway")

    assert allowed(policies, "Ingress", gateway, controller, 8080)
    assert not allowed(policies, "Ingress", gateway, stranger, 8080)
    assert not allowed(policies, "Ingress", gateway, elsewhere, 8080)
    for name in ("auth", "tasks", "analytics"):
        target = pod_of(docs, name)
        port = SERVICES[name]
        assert allowed(policies, "Ingress", target, gateway, port), f"gateway -> {name}"
        assert allowed(policies, "Egress", gateway, target, port), f"gateway -> {name} (egress)"
        assert not allowed(policies, "Ingress", target, controller, port), f"ingress -> {name}"
        assert not allowed(policies, "Ingress", target, stranger, port), f"stranger -> {name}"
        assert not allowed(policies, "Ingress", target, elsewhere, port), f"other ns -> {name}"
        # Between services only the JWKS fetch from auth is allowed.
        for other in ("auth", "tasks", "analytics"):
            if other == name:
                continue
            expected = name == "auth"
            src = pod_of(docs, other)
            assert allowed(policies, "Ingress", target, src, port) is expected, f"{other}->{name}"
            assert allowed(policies, "Egress", src, target, port) is expected, f"{other}->{name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_reach_dns_telemetry_and_only_their_backing_servers(
    rendered: dict[str, list[Doc]], overlay: str, name: str
) -> None:
    docs = rendered[overlay]
    policies = of_kind(docs, "NetworkPolicy")
    pod = pod_of(docs, name)
    dns = Peer({"k8s-app": "kube-dns"}, "kube-system")
    assert allowed(policies, "Egress", pod, dns, 53, "UDP")
    assert allowed(policies, "Egress", pod, dns, 53, "TCP")
    assert allowed(policies, "Egress", pod, EXTERNAL, OTLP_HTTP)
    for port in sorted(ALL_BACKING_PORTS):
        if port in BACKING_PORTS[name]:
            assert allowed(policies, "Egress", pod, EXTERNAL, port), f"{name} -> :{port}"
    for port in (27017, 5672, 6379):
        expected = port in BACKING_PORTS[name]
        assert allowed(policies, "Egress", pod, EXTERNAL, port) is expected, f"{name} -> :{port}"
    assert not allowed(policies, "Egress", pod, EXTERNAL, 443), f"{name} -> anywhere:443"
    assert not allowed(policies, "Egress", pod, EXTERNAL, 22), f"{name} -> anywhere:22"


def test_dev_backing_servers_accept_only_the_services_that_use_them(
    rendered: dict[str, list[Doc]],
) -> None:
    docs = rendered["dev"]
    policies = of_kind(docs, "NetworkPolicy")
    servers = {"mongo": 27017, "rabbitmq": 5672, "redis": 6379}
    for server, port in servers.items():
        target = pod_of(docs, server)
        for name in SERVICES:
            expected = port in BACKING_PORTS[name]
            src = pod_of(docs, name)
            assert allowed(policies, "Ingress", target, src, port) is expected, f"{name}->{server}"
            assert allowed(policies, "Egress", src, target, port) is expected, f"{name}->{server}"
    jaeger = pod_of(docs, "jaeger")
    for name in SERVICES:
        assert allowed(policies, "Ingress", jaeger, pod_of(docs, name), OTLP_HTTP)
    assert not allowed(policies, "Ingress", jaeger, Peer({"app": "x"}, "default"), OTLP_HTTP)


# --------------------------------------------------------------------------- ingress


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_routes_everything_to_the_gateway(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    [ingress] = of_kind(docs, "Ingress")
    gateway_ports = {p["name"] for p in one(docs, "Service", "gateway")["spec"]["ports"]}
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends
    for backend in backends:
        assert backend["name"] == "gateway"
        assert backend["port"]["name"] in gateway_ports


def test_prod_ingress_serves_its_hosts_over_tls(rendered: dict[str, list[Doc]]) -> None:
    [ingress] = of_kind(rendered["prod"], "Ingress")
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    tls_hosts = {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
    assert hosts and hosts <= tls_hosts
    assert all(tls["secretName"] for tls in ingress["spec"]["tls"])


# --------------------------------------------------------------------------- helpers


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity as a number (cores or bytes)."""
    text = str(value)
    suffixes = {
        "m": 1e-3,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
    }
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_the_base_alone_renders(kustomize: Path) -> None:
    docs = kustomize_build(kustomize, K8S / "base")
    assert {d["metadata"]["name"] for d in of_kind(docs, "Deployment")} == set(SERVICES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_are_scraped_on_the_internal_port_which_only_monitoring_reaches(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    policies = of_kind(docs, "NetworkPolicy")
    monitoring = Peer({"app": "prometheus"}, "monitoring")
    controller = Peer({"app.kubernetes.io/name": "ingress-nginx"}, INGRESS_NAMESPACE)
    gateway = pod_of(docs, "gateway")
    for name, internal in INTERNAL_PORTS.items():
        deployment = one(docs, "Deployment", name)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(internal)
        assert annotations["prometheus.io/path"] == "/metrics"
        assert {"name": "internal", "containerPort": internal, "protocol": "TCP"} in container(
            deployment
        )["ports"]
        service_ports = {p["port"] for p in one(docs, "Service", name)["spec"]["ports"]}
        assert internal not in service_ports, f"{name}'s Service must not route its internals"
        pod = pod_of(docs, name)
        assert allowed(policies, "Ingress", pod, monitoring, internal), f"scrape {name}"
        assert not allowed(policies, "Ingress", pod, controller, internal), f"ingress -> {name}"
        if name != "gateway":
            assert not allowed(policies, "Ingress", pod, gateway, internal), f"gw -> {name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_forwarded_for_is_believed_from_the_ingress_and_the_gateway_only(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    [config] = [
        m for m in of_kind(docs, "ConfigMap") if m["metadata"]["name"].startswith("taskmesh-config")
    ]
    for name in SERVICES:
        [entry] = [
            e
            for e in container(one(docs, "Deployment", name))["env"]
            if e["name"] == "TASKMESH_TRUSTED_PROXIES"
        ]
        ref = entry["valueFrom"]["configMapKeyRef"]
        assert ref["name"] == config["metadata"]["name"]
        expected = "INGRESS_CONTROLLER_CIDRS" if name == "gateway" else "GATEWAY_CIDRS"
        assert ref["key"] == expected
        assert config["data"][expected].strip(), f"{overlay} sets no {expected}"
