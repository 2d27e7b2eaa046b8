"""infra/compose, checked without a Docker engine, through Docker Compose's own loader."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import COMPOSE_FILE, INTERNAL_PORTS, REPO, SERVICES, compose_model

BACKING = {"mongo", "rabbitmq", "redis", "jaeger"}
OBSERVABILITY = {"prometheus", "grafana"}
# What each service needs healthy before it starts (DESIGN.md; tasks and analytics verify
# tokens against auth's JWKS; everything exports traces to Jaeger).
NEEDS = {
    "auth": {"mongo", "rabbitmq", "redis", "jaeger"},
    "tasks": {"mongo", "rabbitmq", "redis", "jaeger", "auth"},
    "analytics": {"mongo", "rabbitmq", "redis", "jaeger", "auth"},
    "gateway": {"redis", "jaeger", "auth", "tasks", "analytics"},
}
PUBLISHED = {"gateway": {8080}, "jaeger": {16686}, "rabbitmq": {15672}}
PUBLISHED_WITH_PROFILE = {**PUBLISHED, "prometheus": {9090}, "grafana": {3000}}
DASHBOARD = COMPOSE_FILE.parent / "grafana" / "dashboards" / "taskmesh.json"
REQUIRED_METRICS = [
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "gateway_breaker_state",
    "gateway_ratelimit_decisions_total",
    "events_consumed_total",
    "events_dead_lettered_total",
    "outbox_pending",
    "rabbitmq_detailed_queue_messages_ready",
]

Doc = dict[str, Any]


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def test_default_profile_has_the_suite_and_nothing_else(compose: Doc) -> None:
    assert set(compose["services"]) == set(SERVICES) | BACKING


def test_observability_profile_adds_prometheus_and_grafana(compose_observability: Doc) -> None:
    assert set(compose_observability["services"]) == set(SERVICES) | BACKING | OBSERVABILITY


def test_every_service_has_a_healthcheck(compose_observability: Doc) -> None:
    for name, svc in compose_observability["services"].items():
        check = svc.get("healthcheck") or {}
        assert not check.get("disable"), name
        assert check.get("test", [""])[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_taskmesh_services_are_healthy_only_when_ready(compose: Doc, name: str) -> None:
    # The compose health check gates depends_on and `up --wait`: it must be /readyz on the
    # service's own port, with python (slim images have no curl).
    test = compose["services"][name]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert f"http://127.0.0.1:{SERVICES[name]}/readyz" in test[3]


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_services_wait_for_healthy_dependencies(compose: Doc, name: str) -> None:
    depends = compose["services"][name].get("depends_on", {})
    assert set(depends) == NEEDS[name]
    for dep, how in depends.items():
        assert how["condition"] == "service_healthy", f"{name} -> {dep}"


def test_dependencies_have_no_cycle(compose_observability: Doc) -> None:
    services = compose_observability["services"]
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in services[name].get("depends_on", {}):
            visit(dep, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_every_image_is_pinned(compose_observability: Doc) -> None:
    for name, svc in compose_observability["services"].items():
        assert image_is_pinned(svc["image"]), f"{name}: {svc['image']} is not pinned"


def test_backing_images_are_the_agreed_major_versions(compose: Doc) -> None:
    images = {name: compose["services"][name]["image"] for name in BACKING}
    assert re.fullmatch(r"mongo:7\.0\.\d+", images["mongo"])
    assert re.fullmatch(r"rabbitmq:(3\.13|4\.\d+)\.\d+-management", images["rabbitmq"])
    assert re.fullmatch(r"redis:7\.\d+\.\d+", images["redis"])
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", images["jaeger"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_build_from_the_repo_root_with_their_dockerfile(compose: Doc, name: str) -> None:
    build = compose["services"][name]["build"]
    assert Path(build["context"]).resolve() == REPO
    assert build["dockerfile"] == f"services/{name}/Dockerfile"
    assert (REPO / build["dockerfile"]).is_file()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_listen_on_all_interfaces_and_trace_to_jaeger(compose: Doc, name: str) -> None:
    env = compose["services"][name]["environment"]
    assert env["TASKMESH_HOST"] == "0.0.0.0"
    assert env["TASKMESH_PORT"] == str(SERVICES[name])
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert env["OTEL_SERVICE_NAME"] == name
    for other, port in SERVICES.items():
        if other != "gateway":
            assert env[f"TASKMESH_{other.upper()}_URL"] == f"http://{other}:{port}"


BROKER_USERS = ("auth", "tasks", "analytics")


def test_backing_urls_match_the_servers_credentials(compose: Doc) -> None:
    """Each service reaches MongoDB and RabbitMQ as its own user, with the password the
    server gives that user; Redis has one password."""
    services = compose["services"]
    mongo_env = services["mongo"]["environment"]
    definitions = json.loads(compose["configs"]["rabbitmq-definitions"]["content"])
    rabbit_pw = {user["name"]: user["password"] for user in definitions["users"]}
    redis_cmd = services["redis"]["command"]
    redis_pw = redis_cmd[redis_cmd.index("--requirepass") + 1]
    for name in BROKER_USERS:
        env = services[name]["environment"]
        mongo_pw = mongo_env[f"MONGO_{name.upper()}_PASSWORD"]
        assert env["TASKMESH_MONGO_URL"] == (
            f"mongodb://{name}:{mongo_pw}@mongo:27017/{name}?authSource={name}"
        )
        assert env["TASKMESH_AMQP_URL"] == f"amqp://{name}:{rabbit_pw[name]}@rabbitmq:5672/"
    assert services["auth"]["environment"]["TASKMESH_REDIS_URL"].startswith(
        f"redis://:{redis_pw}@redis:6379/"
    )


def test_no_service_uses_the_root_or_admin_credentials(compose: Doc) -> None:
    services = compose["services"]
    root_pw = services["mongo"]["environment"]["MONGO_INITDB_ROOT_PASSWORD"]
    admin_pw = services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"]
    for name in SERVICES:
        env = services[name]["environment"]
        assert f"taskmesh:{root_pw}@" not in env.get("TASKMESH_MONGO_URL", ""), name
        assert f"taskmesh:{admin_pw}@" not in env.get("TASKMESH_AMQP_URL", ""), name
    # The gateway uses neither server: it gets no credentials for them.
    assert "TASKMESH_MONGO_URL" not in services["gateway"]["environment"]
    assert "TASKMESH_AMQP_URL" not in services["gateway"]["environment"]


def test_mongo_creates_each_services_user_on_its_own_database_only(compose: Doc) -> None:
    mongo = compose["services"]["mongo"]
    mounts = {v["target"]: Path(v["source"]) for v in mongo["volumes"] if v["type"] == "bind"}
    script = mounts["/docker-entrypoint-initdb.d/10-service-users.js"].read_text()
    assert 'roles = [{ role: "readWrite", db: service }]' in script
    for name in BROKER_USERS:
        assert f"{name}: process.env.MONGO_{name.upper()}_PASSWORD" in script
        assert f"MONGO_{name.upper()}_PASSWORD" in mongo["environment"]


def test_broker_grants_are_the_local_stacks(compose: Doc) -> None:
    """The compose broker's users have exactly the permissions infra/local gives them."""
    from taskmesh_local.broker_users import EVENTS_EXCHANGE, GRANTS

    definitions = json.loads(compose["configs"]["rabbitmq-definitions"]["content"])
    permissions = {p["user"]: p for p in definitions["permissions"]}
    topics = {p["user"]: p for p in definitions["topic_permissions"]}
    assert set(topics) == set(GRANTS)
    for name, grant in GRANTS.items():
        assert (permissions[name]["configure"], permissions[name]["write"]) == (
            grant.configure,
            grant.write,
        )
        assert permissions[name]["read"] == grant.read
        # The default exchange routes by queue name: write on it reaches any queue.
        assert not re.search(permissions[name]["write"], "amq.default"), name
        assert topics[name]["exchange"] == EVENTS_EXCHANGE
        assert (topics[name]["write"], topics[name]["read"]) == (
            grant.topic_write,
            grant.topic_read,
        )
    rabbit = compose["services"]["rabbitmq"]
    assert {c["target"] for c in rabbit["configs"]} == {
        "/etc/rabbitmq/definitions.json",
        "/etc/rabbitmq/conf.d/20-taskmesh-definitions.conf",
    }


def test_passwords_follow_the_environment(tmp_path: Path) -> None:
    model = compose_model(
        env={
            "REDIS_PASSWORD": "from-env",
            "MONGO_TASKS_PASSWORD": "m-env",
            "RABBITMQ_TASKS_PASSWORD": "r-env",
        }
    )
    env = model["services"]["gateway"]["environment"]
    assert env["TASKMESH_REDIS_URL"] == "redis://:from-env@redis:6379/0"
    tasks = model["services"]["tasks"]["environment"]
    assert "tasks:m-env@mongo" in tasks["TASKMESH_MONGO_URL"]
    assert model["services"]["mongo"]["environment"]["MONGO_TASKS_PASSWORD"] == "m-env"
    assert "tasks:r-env@rabbitmq" in tasks["TASKMESH_AMQP_URL"]
    definitions = json.loads(model["configs"]["rabbitmq-definitions"]["content"])
    assert {"name": "tasks", "password": "r-env", "tags": ""} in definitions["users"]


def test_only_the_agreed_ports_are_published_and_only_on_loopback(
    compose: Doc, compose_observability: Doc
) -> None:
    for model, expected in ((compose, PUBLISHED), (compose_observability, PUBLISHED_WITH_PROFILE)):
        published: dict[str, set[int]] = {}
        for name, svc in model["services"].items():
            for port in svc.get("ports", []):
                assert port["host_ip"] == "127.0.0.1", f"{name} publishes on {port['host_ip']}"
                assert int(port["published"]) == port["target"], name
                published.setdefault(name, set()).add(port["target"])
        assert published == expected


def test_stateful_servers_keep_their_data_in_named_volumes(compose_observability: Doc) -> None:
    declared = set(compose_observability["volumes"])
    data_dirs = {
        "mongo": "/data/db",
        "rabbitmq": "/var/lib/rabbitmq",
        "redis": "/data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
    }
    for name, target in data_dirs.items():
        mounts = {v["target"]: v for v in compose_observability["services"][name]["volumes"]}
        assert mounts[target]["type"] == "volume", f"{name}: {target} is not a named volume"
        assert mounts[target]["source"] in declared
    for name, svc in compose_observability["services"].items():
        for mount in svc.get("volumes", []):
            if mount["type"] == "bind":
                assert mount.get("read_only"), f"{name} binds {mount['source']} writable"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_containers_are_locked_down(compose: Doc, name: str) -> None:
    svc = compose["services"][name]
    assert svc["read_only"] is True
    assert "ALL" in svc["cap_drop"]
    assert "no-new-privileges:true" in svc["security_opt"]
    assert "/tmp" in svc["tmpfs"]


def test_prometheus_scrapes_every_service_and_rabbitmq_queues(
    compose_observability: Doc,
) -> None:
    prom = compose_observability["services"]["prometheus"]
    [config_mount] = [v for v in prom["volumes"] if v["target"].endswith("prometheus.yml")]
    config = yaml.safe_load(Path(config_mount["source"]).read_text())
    targets: dict[str, str] = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                path = job.get("metrics_path", "/metrics")
                targets[target] = path
    for name, port in INTERNAL_PORTS.items():
        assert targets.get(f"{name}:{port}") == "/metrics", f"{name} is not scraped"
        # The public port has no /metrics: scraping it would only collect 404s.
        assert f"{name}:{SERVICES[name]}" not in targets
    queue_jobs = [
        j for j in config["scrape_configs"] if j.get("metrics_path") == "/metrics/detailed"
    ]
    assert queue_jobs and queue_jobs[0]["params"]["family"] == ["queue_coarse_metrics"]
    assert queue_jobs[0]["static_configs"][0]["targets"] == ["rabbitmq:15692"]


def test_grafana_provisions_the_datasource_the_dashboard_uses(
    compose_observability: Doc,
) -> None:
    grafana = compose_observability["services"]["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}
    provisioning = mounts["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    uids = {ds["uid"]: ds for ds in datasources["datasources"]}
    assert uids["prometheus"]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "taskmesh.yaml").read_text())
    dashboard_dir = providers["providers"][0]["options"]["path"]
    assert mounts[dashboard_dir] == DASHBOARD.parent

    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]


def test_dashboard_covers_every_signal_the_issue_asks_for() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in REQUIRED_METRICS:
        assert re.search(rf"\b{metric}\b", exprs), f"no panel uses {metric}"
    assert "histogram_quantile(0.99" in exprs
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_internal_ports_are_set_and_never_published(compose: Doc, name: str) -> None:
    service = compose["services"][name]
    assert service["environment"]["TASKMESH_INTERNAL_PORT"] == str(INTERNAL_PORTS[name])
    published = {p.get("target") for p in service.get("ports", [])}
    assert INTERNAL_PORTS[name] not in published


def test_services_believe_forwarded_for_from_the_gateways_fixed_address_only(compose: Doc) -> None:
    services = compose["services"]
    [address] = [net["ipv4_address"] for net in services["gateway"]["networks"].values() if net]
    for name in ("auth", "tasks", "analytics"):
        assert services[name]["environment"]["TASKMESH_TRUSTED_PROXIES"] == f"{address}/32"
    # The gateway is published directly: its TCP peer is the client, unless one is set.
    assert services["gateway"]["environment"]["TASKMESH_TRUSTED_PROXIES"] == ""
