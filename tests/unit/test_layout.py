"""The shape of the project: one-way dependencies, and a docker-compose file that would run."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from htap_sync.cli import main
from htap_sync.common.settings import ENV_PREFIX, FLAT_NAMES, load_settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "producer", "worker", "simulator")
# Every folder of product code, by the module it is imported as.
PARTS = {f"htap_sync.{p}": ROOT / p for p in PACKAGES} | {"htap_sync": ROOT / "src" / "htap_sync"}
INTERNAL = {"htap_sync.cli", "htap_sync.devstack", *(f"htap_sync.{p}" for p in PACKAGES)}


def _sources(part: str) -> list[Path]:
    folder = PARTS[part]
    if part != "htap_sync":
        return sorted(folder.rglob("*.py"))
    # The root's own modules and the CLI: the symlinked parts are checked under their own names.
    return sorted(folder.glob("*.py")) + sorted((folder / "cli").rglob("*.py"))


def _trees(part: str) -> list[ast.Module]:
    return [ast.parse(path.read_text(), str(path)) for path in _sources(part)]


def _imports(part: str) -> set[str]:
    """Modules imported by a part: third-party ones by top name, ours as ``htap_sync.<part>``."""
    found: set[str] = set()
    for tree in _trees(part):
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found.update(
                ".".join(n.split(".")[:2]) if n.startswith("htap_sync.") else n.split(".")[0]
                for n in names
            )
    return found


@pytest.mark.parametrize(
    ("part", "allowed"),
    [
        ("htap_sync.common", {"htap_sync.common"}),
        ("htap_sync.producer", {"htap_sync.common", "htap_sync.producer"}),
        ("htap_sync.worker", {"htap_sync.common", "htap_sync.worker"}),
        ("htap_sync.simulator", {"htap_sync.simulator"}),
    ],
)
def test_dependencies_point_one_way(part: str, allowed: set[str]) -> None:
    """producer -> common <- worker; the simulator imports nothing else of the project."""
    ours = {name for name in _imports(part) if name == "htap_sync" or name.startswith("htap_sync.")}
    assert ours <= allowed


def test_only_the_composition_root_joins_the_parts() -> None:
    """The CLI may import every part; its modules import nothing from outside the package."""
    ours = {n for n in _imports("htap_sync") if n.startswith("htap_sync")}
    assert ours <= INTERNAL


def test_no_module_is_loaded_by_a_string() -> None:
    """No import_module()/__import__() in product code: every dependency is a checked import."""
    for part in PARTS:
        for tree in _trees(part):
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    assert name not in {"import_module", "__import__"}, ast.dump(node)[:120]


def test_no_pickle_anywhere_in_the_product() -> None:
    """Untrusted input is JSON only: no product module imports pickle."""
    for part in PARTS:
        assert "pickle" not in _imports(part), part


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _interpolate(value: str) -> str:
    # ${NAME:-default} as compose would resolve it with NAME unset.
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _our_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _compose()["services"].items() if "build" in s}


def test_compose_runs_real_htap_sync_commands() -> None:
    """Every service built from our image runs an htap-sync command whose options parse."""
    services = _our_services()
    assert {"worker", "simulator"} <= set(services)
    for name, service in services.items():
        argv = [_interpolate(str(a)) for a in service["command"]]
        assert argv[0] == "htap-sync", name
        command = main.commands.get(argv[1])
        assert command is not None, f"{name}: no command {argv[1]!r}"
        # make_context parses and validates the options without running the command.
        with click.Context(main, info_name="htap-sync") as parent:
            command.make_context(argv[1], argv[2:], parent=parent)


def test_compose_settings_are_real_settings() -> None:
    """Every HTAP_SYNC_* variable the compose file sets is a setting, with a valid value."""
    fields = {f"{ENV_PREFIX}{name.upper()}": name for name in FLAT_NAMES}
    worker = _our_services()["worker"]
    env = {k: _interpolate(str(v)) for k, v in worker["environment"].items()}
    assert set(env) <= set(fields)
    settings = load_settings({fields[k]: v for k, v in env.items()}, env_file=None)
    assert settings.redis.url.host == "redis"
    assert settings.cloud.require_endpoint == "http://simulator:8090"


def test_compose_ingress_starts_with_keys_on_loopback() -> None:
    """The ingress has the fleet's shared settings plus API keys, published on loopback only."""
    fields = {f"{ENV_PREFIX}{name.upper()}": name for name in FLAT_NAMES}
    services = _our_services()
    ingress = services["ingress"]
    env = {k: _interpolate(str(v)) for k, v in ingress["environment"].items()}
    shared = {k: _interpolate(str(v)) for k, v in _compose()["x-settings"].items()}
    assert set(env) <= set(fields) and shared.items() <= env.items()
    settings = load_settings({fields[k]: v for k, v in env.items()}, env_file=None)
    assert settings.ingress.accepted_keys()  # with auth on, no key would stop it at start
    assert all(str(p).startswith("127.0.0.1:") for p in ingress["ports"])


def test_compose_redis_keeps_what_it_accepts() -> None:
    """Redis runs with AOF persistence and noeviction, and workers run as two replicas."""
    compose = _compose()
    command = [str(a) for a in compose["services"]["redis"]["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert compose["services"]["worker"]["deploy"]["replicas"] == 2


def test_dockerfile_installs_every_package() -> None:
    """The image copies and installs all four packages the commands need."""
    text = (ROOT / "Dockerfile").read_text()
    for folder in (*PACKAGES, "src"):
        assert f"COPY {folder} ./{folder}" in text
    assert "pip install ." in text


def test_readme_and_env_example_document_every_setting() -> None:
    """Each setting appears in the README's table and in .env.example's list or the README."""
    readme = (ROOT / "README.md").read_text()
    for name in FLAT_NAMES:
        assert f"`{ENV_PREFIX}{name.upper()}`" in readme, name
    example = (ROOT / ".env.example").read_text()
    for line in example.splitlines():
        if line and not line.startswith("#"):
            assert line.split("=")[0].removeprefix(ENV_PREFIX).lower() in FLAT_NAMES


def test_readme_opens_with_the_two_commands() -> None:
    """The first code block of the README is `make demo` and `make test`."""
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_readme_python_examples_import_the_public_api() -> None:
    """Every README Python example compiles, and its imports resolve to `htap_sync` names."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    for block in blocks:
        tree = ast.parse(block)
        imports: list[ast.stmt] = [
            n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)
        ]
        for node in imports:
            assert isinstance(node, ast.Import | ast.ImportFrom)
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            assert module is not None and module.split(".")[0] == "htap_sync", module
        exec(compile(ast.Module(body=imports, type_ignores=[]), "README", "exec"), {})  # noqa: S102


def test_compose_ha_profile_is_a_sentinel_group_the_settings_can_use() -> None:
    """Profile "ha": a replica of redis and three sentinels on master "htap" (quorum 2), and
    the fleet's settings take them through HTAP_SYNC_REDIS_SENTINELS/_MASTER."""
    services = _compose()["services"]
    ha = {name for name, s in services.items() if "ha" in s.get("profiles", [])}
    assert ha == {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
    replica = [str(a) for a in services["redis-replica"]["command"]]
    assert replica[replica.index("--replicaof") + 1 :][:2] == ["redis", "6379"]
    # A master cut off from its replica takes no writes it would lose (issue 20): the
    # replica (a master once promoted) always, the first master when the ha line says so.
    master = [str(a) for a in services["redis"]["command"]]
    assert _option(replica, "--min-replicas-to-write") == "1"
    assert _option(master, "--min-replicas-to-write") == "${REDIS_MIN_REPLICAS_TO_WRITE:-0}"
    assert "REDIS_MIN_REPLICAS_TO_WRITE=1" in (ROOT / "docker-compose.yml").read_text()
    for command in (master, replica):
        assert 0 < int(_option(command, "--min-replicas-max-lag")) <= 5
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        script = " ".join(str(a) for a in services[name]["command"])
        assert "sentinel monitor htap redis 6379 2" in script and "--sentinel" in script
    fields = {f"{ENV_PREFIX}{name.upper()}": name for name in FLAT_NAMES}
    shared = {k: _interpolate(str(v)) for k, v in _compose()["x-settings"].items()}
    shared[f"{ENV_PREFIX}REDIS_SENTINELS"] = "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379"
    shared[f"{ENV_PREFIX}REDIS_SENTINEL_MASTER"] = "htap"
    settings = load_settings({fields[k]: v for k, v in shared.items()}, env_file=None)
    assert [host for host, _ in settings.redis.sentinel_hosts()] == [
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
    ]


# Every profile of the compose file; a profile added there must be added here to be checked.
PROFILES = ("default", "ha", "flower", "monitoring")


def _active(profile: str) -> dict[str, dict[str, Any]]:
    """The services `docker compose --profile PROFILE up` starts (``default``: no profile)."""
    return {
        name: service
        for name, service in _compose()["services"].items()
        if not service.get("profiles") or profile in service["profiles"]
    }


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: _interpolate(str(v)) for k, v in service.get("environment", {}).items()}


def _check_url(service: dict[str, Any]) -> str:
    """The URL a healthcheck fetches (Python's urlopen or wget), or '' for another check."""
    found = re.search(
        r"http://127\.0\.0\.1:\d+/\S*?(?=['\"\s]|$)",
        " ".join(map(str, service["healthcheck"]["test"])),
    )
    return found.group(0) if found else ""


def test_compose_profiles_are_the_ones_checked() -> None:
    """Every profile the compose file uses is one these tests check."""
    used = {p for s in _compose()["services"].values() for p in s.get("profiles", [])}
    assert used == set(PROFILES) - {"default"}


@pytest.mark.parametrize("profile", PROFILES)
def test_compose_profile_services_restart_check_health_and_start(profile: str) -> None:
    """Under each profile every service restarts unless stopped, has a healthcheck, depends
    only on services of the same run (waiting for health only where one is checked),
    publishes on loopback only, and mounts declared volumes or files of this repository."""
    compose = _compose()
    active = _active(profile)
    for name, service in active.items():
        assert service.get("restart") == "unless-stopped", name
        test = service.get("healthcheck", {}).get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
        for dep, how in service.get("depends_on", {}).items():
            assert dep in active, f"{name} depends on {dep}, absent from profile {profile}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in active[dep], f"{name} waits for {dep}'s health"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} mounts undeclared {source}"


def test_compose_healthchecks_probe_the_ports_services_listen_on() -> None:
    """The worker's healthcheck reads its metrics port, the ingress's its API port, the
    simulator's and Flower's the port their command serves."""
    services = _compose()["services"]
    worker_port = _env(services["worker"])[f"{ENV_PREFIX}METRICS_PORT"]
    assert _check_url(services["worker"]) == f"http://127.0.0.1:{worker_port}/metrics"
    for name, path in (
        ("ingress", "/healthz"),
        ("simulator", "/_sim/healthz"),
        ("flower", "/healthcheck"),
    ):
        argv = [_interpolate(str(a)) for a in services[name]["command"]]
        port = argv[argv.index("--port") + 1]
        assert _check_url(services[name]) == f"http://127.0.0.1:{port}{path}", name


def test_prometheus_scrapes_every_metrics_port_and_nothing_else() -> None:
    """monitoring/prometheus.yml scrapes each service that sets HTAP_SYNC_METRICS_PORT, on that
    port (every worker replica through its DNS name), and the ingress's metrics port is not its
    public one; no metrics port is published."""
    services = _compose()["services"]
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets |= {(name, int(sd["port"])) for name in sd["names"]}
        for static in job.get("static_configs", []):
            targets |= {(t.split(":")[0], int(t.split(":")[1])) for t in static["targets"]}
    exporting = {
        (name, int(_env(s)[f"{ENV_PREFIX}METRICS_PORT"]))
        for name, s in services.items()
        if f"{ENV_PREFIX}METRICS_PORT" in _env(s)
    }
    assert targets == exporting and {"worker", "ingress"} <= {n for n, _ in targets}
    ingress_argv = [str(a) for a in services["ingress"]["command"]]
    api_port = int(ingress_argv[ingress_argv.index("--port") + 1])
    for name, port in exporting:
        published = [str(p).rsplit(":", 1)[-1] for p in services[name].get("ports", [])]
        assert str(port) not in published, f"{name} publishes its metrics port"
        assert name != "ingress" or port != api_port
    prometheus = services["prometheus"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    mounted = {str(v).split(":")[1]: str(v).split(":")[0] for v in prometheus["volumes"]}
    assert mounted[config_flag.split("=", 1)[1]] == "./monitoring/prometheus.yml"


def test_grafana_provisions_prometheus_and_the_shipped_dashboard() -> None:
    """Grafana's data source is the compose Prometheus, and its dashboard provider reads the
    folder the dashboard file is mounted into."""
    grafana = _compose()["services"]["grafana"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in grafana["volumes"]}
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "htap-sync.yml").read_text())[
        "providers"
    ]
    folder = provider["options"]["path"]
    assert (ROOT / mounts[folder] / "htap-sync.json").is_file()


def test_compose_flower_uses_the_fleet_settings_and_a_login() -> None:
    """Flower gets the fleet's settings (so its key prefix) and a well-formed basic login."""
    from htap_sync.cli.flower import parse_users

    flower = _compose()["services"]["flower"]
    env = _env(flower)
    shared = {k: _interpolate(str(v)) for k, v in _compose()["x-settings"].items()}
    assert shared.items() <= env.items()
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in FLAT_NAMES}
    assert {k for k in env if k.startswith(ENV_PREFIX)} <= fields
    assert parse_users(env["FLOWER_BASIC_AUTH"])


def test_readme_metrics_table_is_the_generated_one() -> None:
    """The README's metrics table is exactly what `python -m htap_sync.metrics_table` prints."""
    from htap_sync.metrics_table import render_metrics_table

    readme = (ROOT / "README.md").read_text()
    assert render_metrics_table().strip() in readme
