"""The deployment files (deploy/) agree with the code.

Docker and Kubernetes are not run here; what is checked is everything that can be checked
without them: every xueliang container, pod and systemd unit is run through the real command line
(``xueliang serve ...`` / ``db upgrade`` with the server itself replaced by a recorder), with the
environment it would get (its own, its env files or Secret, the image's) and the settings file
mounted where its ``--config`` points, so that the platform's own settings loader
(``load_settings``, extra="forbid") judges them. On top of what the loader catches, a XUELIANG_*
variable must name a setting (the loader ignores unknown top-level variables), the settings a
cluster needs must be there (one secret, one SIP password and one audit key for all nodes,
PostgreSQL, Redis), every role must be a role, ports in containers, Services and probes must be
the settings' ports, probes must hit an open route that exists, and every path the node writes
must be on a writable volume.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from xueliang import cli
from xueliang.config import ENV_ONLY, Role, Settings, load_settings, unknown_env_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
ROLES = set(get_args(Role))
#: Variables read straight from the environment, not settings (each is checked to be read in src/).
SERVED_ROLES = ROLES - {"all"}


# ---- the checks every deployment shares ------------------------------------------------------
class DeployError(AssertionError):
    pass


def check_env_names(env: dict[str, str], where: str) -> None:
    """Every XUELIANG_* variable names a setting (section__key...), or is one read directly."""
    bad = unknown_env_names(env)
    if bad:
        raise DeployError(f"{where}: not a setting: {', '.join(bad)}")


@dataclass
class Run:
    """What the command line did with one container's or unit's command."""

    exit_code: int
    output: str
    settings: Settings | None = None
    migrated: str | None = None


def run_cli(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``xueliang ARGS`` through the real CLI with exactly ``env`` as the XUELIANG_* environment;
    the server and the migration are replaced by recorders."""
    import os

    import xueliang.db.migrate as migrate
    import xueliang.server as server

    got: dict[str, Any] = {}

    def migrated(url: str, *_: Any) -> None:
        got["migrated"] = url
        raise _Recorded

    async def migrated_async(url: str, *_: Any) -> None:
        migrated(url)

    with monkeypatch.context() as m:
        for k in list(os.environ):
            if k.startswith("XUELIANG_"):
                m.delenv(k)
        for k, v in env.items():
            m.setenv(k, v)
        m.setattr(server, "run", lambda settings: settings)
        m.setattr(cli, "run_loop", lambda s: got.__setitem__("settings", s))
        m.setattr(cli, "_logging", lambda s: None)
        m.setattr(migrate, "upgrade", migrated)
        m.setattr(migrate, "upgrade_async", migrated_async)
        r = CliRunner().invoke(cli.app, args)
    if isinstance(r.exception, _Recorded):
        return Run(0, r.output, None, got["migrated"])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Run(r.exit_code, r.output, got.get("settings"), got.get("migrated"))


class _Recorded(Exception):
    """The migration was reached (and recorded); the command goes no further."""


@dataclass
class Node:
    """One xueliang process as a deployment file defines it."""

    where: str
    args: list[str]
    env: dict[str, str]
    #: Files as the process sees them (container path -> file in the repository).
    files: dict[str, Path] = field(default_factory=dict)
    #: Directories it may write (container paths).
    writable: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        return self.args[0]

    @property
    def role(self) -> str:
        if "--role" not in self.args:
            raise DeployError(f"{self.where}: no --role: the node would run everything")
        return self.args[self.args.index("--role") + 1]


def effective(node: Node, monkeypatch: pytest.MonkeyPatch) -> Run:
    check_env_names(node.env, node.where)
    args = list(node.args)
    if "--config" in args:
        i = args.index("--config") + 1
        if args[i] not in node.files:
            raise DeployError(f"{node.where}: --config {args[i]} is not a file mounted into it")
        args[i] = str(node.files[args[i]])
    r = run_cli(args, node.env, monkeypatch)
    if r.exit_code != 0:
        raise DeployError(f"{node.where}: `xueliang {' '.join(node.args)}` exits {r.exit_code}:\n{r.output}")
    return r


def check_cluster_node(node: Node, s: Settings) -> None:
    """What every node of a cluster needs, whatever its role."""
    where = node.where
    assert node.role in SERVED_ROLES, f"{where}: --role {node.role} (roles: {sorted(SERVED_ROLES)})"
    assert s.cluster.roles == [node.role], where
    assert make_url(s.database.url).get_backend_name() == "postgresql", f"{where}: a cluster needs PostgreSQL"
    assert s.cluster.redis_url.startswith("redis://"), where
    # One secret, one device password and one audit key for the cluster: left empty, each node
    # would generate its own, and a token from one API node would not pass another.
    assert s.secret_key, f"{where}: secret_key unset"
    assert s.sip.password, f"{where}: sip.password unset"
    assert node.env.get("XUELIANG_AUDIT_KEY"), f"{where}: XUELIANG_AUDIT_KEY unset"
    assert s.cluster.node_id, f"{where}: no node ID"
    for path in (s.storage.var_dir, s.access.audit_heads_file):
        assert path is not None and path.is_absolute(), f"{where}: {path} is relative"
        assert any(path == Path(w) or path.is_relative_to(w) for w in node.writable), \
            f"{where}: writes {path}, which is on no writable volume ({node.writable})"
    if node.role == "api":
        assert s.api.host == "0.0.0.0", f"{where}: the API must be reachable from outside the node"
    if node.role == "signalling":
        assert s.sip.host not in ("127.0.0.1", "0.0.0.0", "::"), \
            f"{where}: sip.host {s.sip.host} is put in Via/Contact: the address cameras reach"
    if node.role == "media":
        assert s.media.announce_ip not in ("127.0.0.1", "0.0.0.0", "::"), f"{where}: media announce_ip"
        # API nodes relay viewers to a media node at the HTTP address it announces.
        assert s.api.host == "0.0.0.0", f"{where}: a media node's HTTP must be reachable"
        advertised = s.cluster.advertise_host or s.api.host
        assert advertised not in ("127.0.0.1", "0.0.0.0", "::"), f"{where}: announces HTTP at {advertised}"


def role_ports(s: Settings, role: str) -> set[tuple[int, str]]:
    """The ports a node of ``role`` listens on, from its settings."""
    return {
        "api": {(s.api.port, "TCP")},
        "signalling": {(s.sip.port, "UDP"), (s.sip.port, "TCP")},
        # A media node serves its viewers over HTTP too.
        "media": {(s.api.port, "TCP"), (s.media.rtp_port, "UDP"), (s.media.rtp_tcp_port, "TCP")},
        "worker": set(),
    }[role]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (docker compose and systemd both read these the same way for ours)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def example_of(path: Path) -> Path:
    """A secrets file is committed as its *.example template only."""
    ex = path.with_name(path.name + ".example")
    assert ex.is_file(), f"{path.name} is referenced but {ex.name} is not committed"
    return ex


def test_variables_read_outside_the_settings_are_read() -> None:
    src = "\n".join(p.read_text() for p in (ROOT / "src" / "xueliang").rglob("*.py"))
    for name in ENV_ONLY:
        assert f'"{name}"' in src or f"'{name}'" in src, name


def test_the_checks_catch_a_misspelt_or_unknown_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself can fail: misspelt names in each place a setting comes from."""
    ok_env = {"XUELIANG_SIP__PORT": "5062", "XUELIANG_CLUSTER__NODE_ID": "n1", "XUELIANG_AUDIT_KEY": "k" * 32}
    check_env_names(ok_env, "ok")
    for bad in ("XUELIANG_SIP__PORTT", "XUELIANG_SECRETKEY", "XUELIANG_SIP__PORT__X", "XUELIANG_CLUSTR__NODE_ID"):
        with pytest.raises(DeployError, match=bad):
            check_env_names({**ok_env, bad: "1"}, "bad")
    toml = tmp_path / "x.toml"
    toml.write_text('[sip]\nhots = "10.0.0.1"\n')
    node = Node("bad-toml", ["serve", "--config", "/etc/x.toml", "--role", "api"],
                {"XUELIANG_CLUSTER__REDIS_URL": "redis://r:6379/0"}, {"/etc/x.toml": toml})
    with pytest.raises(DeployError, match=r"sip\.hots: unknown key"):
        effective(node, monkeypatch)
    toml.write_text("")
    with pytest.raises(DeployError, match="roles"):
        effective(Node("bad-role", ["serve", "--config", "/etc/x.toml", "--role", "signaling"],
                       node.env, node.files), monkeypatch)
    with pytest.raises(DeployError, match="not a file mounted"):
        effective(Node("bad-path", ["serve", "--config", "/etc/y.toml", "--role", "api"], node.env, node.files),
                  monkeypatch)


# ---- the image --------------------------------------------------------------------------------
def dockerfile() -> tuple[list[str], dict[str, str], list[str]]:
    """The runtime stage's ENTRYPOINT, ENV and EXPOSE."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.M)
    last = stages[-1]
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", last, re.M).group(1))  # type: ignore[union-attr]
    env: dict[str, str] = {}
    for m in re.finditer(r"^ENV (.*)$", last, re.M):
        for part in shlex.split(m.group(1)):
            k, _, v = part.partition("=")
            env[k] = v
    expose = [p for m in re.finditer(r"^EXPOSE (.*)$", last, re.M) for p in m.group(1).split()]
    return entry, env, expose


def test_the_image_runs_xueliang_with_the_console_built_in() -> None:
    entry, env, expose = dockerfile()
    assert entry[-1] == "xueliang", entry
    check_env_names(env, "Dockerfile")
    d = load_settings()
    assert sorted(expose) == sorted({f"{d.api.port}/tcp", f"{d.sip.port}/udp", f"{d.sip.port}/tcp",
                                     f"{d.media.rtp_port}/udp", f"{d.media.rtp_tcp_port}/tcp"}), expose
    # The console is copied from where web/vite.config.ts writes it.
    vite = (ROOT / "web" / "vite.config.ts").read_text()
    out = re.search(r"new URL\('\.\./([^']+)'", vite).group(1).rstrip("/")  # type: ignore[union-attr]
    text = (DEPLOY / "Dockerfile").read_text()
    assert f"COPY --from=console /build/{out}/ {out}/" in text
    assert "WORKDIR /build/web" in text
    # What the image copies is not ignored by the build context.
    ignored = (ROOT / ".dockerignore").read_text().split()
    for needed in ("src", "web", "pyproject.toml", "README.md", "scripts"):
        assert needed not in ignored


# ---- docker compose ---------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def compose_nodes() -> Iterator[tuple[str, dict[str, Any], Node]]:
    _, image_env, _ = dockerfile()
    for name, svc in compose()["services"].items():
        if not str(svc.get("image", "")).startswith("xueliang"):
            continue
        env = dict(image_env)
        for f in svc.get("env_file", []):
            env.update(read_env_file(example_of(COMPOSE / f)))
        env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
        files: dict[str, Path] = {}
        writable = []
        for v in svc.get("volumes", []):
            if isinstance(v, dict):
                files[v["target"]] = COMPOSE / v["source"]
                if not v.get("read_only"):
                    writable.append(v["target"])
            else:
                _source, target, *mode = v.split(":")
                if "ro" not in mode:
                    writable.append(target)
        yield name, svc, Node(f"compose {name}", list(svc["command"]), env, files, writable)


def test_compose_nodes_are_valid_cluster_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = compose()
    roles: dict[str, int] = {}
    ids = set()
    bound: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for name, svc, node in compose_nodes():
        r = effective(node, monkeypatch)
        if node.command == "db":
            assert node.args[:2] == ["db", "upgrade"] and r.migrated
            assert make_url(r.migrated).get_backend_name() == "postgresql"
            continue
        s = r.settings
        assert s is not None
        check_cluster_node(node, s)
        roles[node.role] = roles.get(node.role, 0) + 1
        assert s.cluster.node_id not in ids, f"two nodes called {s.cluster.node_id}"
        ids.add(s.cluster.node_id)
        assert svc["network_mode"] == "host", f"{name}: see the file's comment on networking"
        # Nodes start after the migrations, with Redis up.
        deps = svc["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        # Every node is on the host's network: no two may bind the same port.
        for port, proto in role_ports(s, node.role):
            host = {"api": s.api.host, "signalling": s.sip.host, "media": s.media.host}[node.role]
            if (port, proto) == (s.api.port, "TCP"):
                host = s.api.host
            for other, other_host in bound.get((port, proto), []):
                assert "0.0.0.0" not in (host, other_host) and host != other_host, \
                    f"{name} and {other} both bind {port}/{proto}"
            bound.setdefault((port, proto), []).append((name, host))
        if node.role in ("api", "media"):
            test = svc["healthcheck"]["test"]
            url = re.search(r"http://[^'\" ]+", " ".join(test)).group(0)  # type: ignore[union-attr]
            assert url == f"http://127.0.0.1:{s.api.port}/healthz", url
        # The database and Redis are the ones this file runs, with the passwords of their env files.
        db = make_url(s.database.url)
        pg = read_env_file(example_of(COMPOSE / doc["services"]["postgres"]["env_file"][0]))
        assert (db.host, db.port, db.database, db.username, db.password) == (
            "127.0.0.1", 5432, pg["POSTGRES_DB"], pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
        assert "listen_addresses=127.0.0.1" in doc["services"]["postgres"]["command"]
        redis = urlsplit(s.cluster.redis_url)
        rd = read_env_file(example_of(COMPOSE / doc["services"]["redis"]["env_file"][0]))
        assert (redis.hostname, redis.port, redis.password) == ("127.0.0.1", 6379, rd["REDIS_PASSWORD"])
        assert "--bind 127.0.0.1 --port 6379" in " ".join(doc["services"]["redis"]["command"])
    assert roles == {"api": 1, "signalling": 2, "media": 1, "worker": 1}, roles
    # One service builds the image, from the repository root with deploy/Dockerfile; the others
    # use it and never pull it.
    builds = {n: s["build"] for n, s in doc["services"].items() if "build" in s}
    assert list(builds) == ["migrate"]
    build = builds["migrate"]
    assert (COMPOSE / build["context"]).resolve() == ROOT and (ROOT / build["dockerfile"]) == DEPLOY / "Dockerfile"
    for name, svc, _ in compose_nodes():
        assert svc["image"] == doc["services"]["migrate"]["image"] and svc["pull_policy"] == "never", name


# ---- Kubernetes -------------------------------------------------------------------------------
def k8s_objects() -> list[dict[str, Any]]:
    out = []
    for f in sorted(K8S.glob("*.yaml")):
        if f.name == "secret.yaml":  # an operator's filled-in copy, not in git
            continue
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                doc["_file"] = f.name
                out.append(doc)
    return out


def k8s(kind: str) -> list[dict[str, Any]]:
    return [o for o in k8s_objects() if o["kind"] == kind]


def secret_values() -> dict[str, dict[str, str]]:
    return {s["metadata"]["name"]: s["stringData"] for s in k8s("Secret")}


def pod_nodes(workload: dict[str, Any], tmp_path: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any], Node]]:
    """Each xueliang container of a workload, with the env a pod of it would get."""
    _, image_env, _ = dockerfile()
    secrets = secret_values()
    maps = {c["metadata"]["name"]: c["data"] for c in k8s("ConfigMap")}
    pod = workload["spec"]["template"]["spec"]
    name = workload["metadata"]["name"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
    field_values = {"metadata.name": f"{name}-0", "status.hostIP": "10.20.0.7", "status.podIP": "10.244.1.9"}
    for c in pod["containers"]:
        if "command" in c:  # a helper in the pod (the audit heads' shipper), not xueliang
            continue
        assert c["image"].startswith("xueliang"), c["image"]
        env = dict(image_env)
        for ef in c.get("envFrom", []):
            env.update(secrets[ef["secretRef"]["name"]])
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif "fieldRef" in e["valueFrom"]:
                env[e["name"]] = field_values[e["valueFrom"]["fieldRef"]["fieldPath"]]
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                env[e["name"]] = secrets[ref["name"]][ref["key"]]
        files: dict[str, Path] = {}
        writable = []
        for vm in c.get("volumeMounts", []):
            v = volumes.get(vm["name"])
            if v is None:
                assert vm["name"] in claims, f"{name}: volume {vm['name']} is defined nowhere"
            elif "configMap" in v:
                for key, text in maps[v["configMap"]["name"]].items():
                    f = tmp_path / name / key
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_text(text)
                    files[f"{vm['mountPath']}/{key}"] = f
            if not vm.get("readOnly"):
                writable.append(vm["mountPath"])
        assert c.get("securityContext", {}).get("readOnlyRootFilesystem"), f"{name}: root filesystem writable"
        yield pod, c, Node(f"kubernetes {workload['_file']} {name}", list(c["args"]), env, files, writable)


def container_port(pod: dict[str, Any], port: int | str, protocol: str = "TCP") -> int:
    for c in pod["containers"]:
        for p in c.get("ports", []):
            if (p.get("name") == port or p["containerPort"] == port) and p.get("protocol", "TCP") == protocol:
                return int(p["containerPort"])
    raise DeployError(f"no container port {port}/{protocol}")


def test_kubernetes_pods_are_valid_cluster_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xueliang.api.main import OPEN_ROUTES

    routes = app_routes(tmp_path)
    roles: dict[str, str] = {}
    services = k8s("Service")
    for w in k8s("Deployment") + k8s("StatefulSet") + k8s("Job"):
        if w["metadata"]["name"] == "xueliang-redis":
            continue
        for pod, c, node in pod_nodes(w, tmp_path):
            r = effective(node, monkeypatch)
            if w["kind"] == "Job":
                assert node.args[:2] == ["db", "upgrade"] and r.migrated
                assert "xueliang_app" not in r.migrated, "migrations run as the owner"
                continue
            s = r.settings
            assert s is not None
            check_cluster_node(node, s)
            roles[node.role] = w["kind"]
            # The settings' ports are the container's ports, exactly.
            declared = {(int(p["containerPort"]), p.get("protocol", "TCP")) for p in c.get("ports", [])}
            assert declared == role_ports(s, node.role), (node.where, declared)
            if pod.get("hostNetwork"):
                assert pod["dnsPolicy"] == "ClusterFirstWithHostNet", node.where
                assert all(p.get("hostPort", p["containerPort"]) == p["containerPort"] for p in c["ports"])
            if node.role in ("signalling", "media"):
                # Bound and announced: the Kubernetes node's own address (see signalling.yaml).
                assert pod.get("hostNetwork") is True, node.where
                host_env = "XUELIANG_SIP__HOST" if node.role == "signalling" else "XUELIANG_MEDIA__HOST"
                ref = next(e for e in c["env"] if e["name"] == host_env)
                assert ref["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
            for probe in ("readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if node.role in ("api", "media"):
                    assert p is not None and "httpGet" in p, f"{node.where}: no HTTP {probe}"
                if p is not None and "httpGet" in p:
                    path, port = p["httpGet"]["path"], p["httpGet"]["port"]
                    assert path in routes, f"{node.where}: {probe} on {path}, which is no GET route"
                    # Probes send no token.
                    assert path in OPEN_ROUTES, f"{node.where}: {probe} on {path}, which needs a token"
                    assert container_port(pod, port) == s.api.port
                elif p is not None:
                    assert (container_port(pod, p["tcpSocket"]["port"]), "TCP") in role_ports(s, node.role)
            # The audit heads shipper follows the file this node writes.
            for helper in (h for h in pod["containers"] if "command" in h):
                assert helper["command"][-1] == str(s.access.audit_heads_file), helper["command"]
            # Every Service in front of these pods reaches a port the settings open.
            labels = w["spec"]["template"]["metadata"]["labels"]
            for svc in services:
                sel = svc["spec"]["selector"]
                if all(labels.get(k) == v for k, v in sel.items()):
                    for p in svc["spec"]["ports"]:
                        proto = p.get("protocol", "TCP")
                        target = container_port(pod, p.get("targetPort", p["port"]), proto)
                        assert (target, proto) in role_ports(s, node.role), (svc["metadata"]["name"], p)
                        assert p["port"] == target, "the Service port is the settings' port"
    assert roles == {"api": "Deployment", "signalling": "StatefulSet", "media": "Deployment", "worker": "Deployment"}
    # Redis: the URL every pod has names its Service and port, with the password Redis is given.
    redis = urlsplit(secret_values()["xueliang-settings-secret"]["XUELIANG_CLUSTER__REDIS_URL"])
    svc = next(s for s in services if s["metadata"]["name"] == "xueliang-redis")
    assert redis.hostname == f"xueliang-redis.{svc['metadata']['namespace']}.svc"
    assert redis.port == svc["spec"]["ports"][0]["port"]
    assert redis.password == secret_values()["xueliang-infra-secret"]["redis-password"]


def test_kubernetes_database_url_lists_both_hosts_and_only_accepts_the_primary() -> None:
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

    for key, url in (("xueliang-settings-secret", "XUELIANG_DATABASE__URL"),
                     ("xueliang-infra-secret", "migrate-database-url")):
        u = make_url(secret_values()[key][url])
        _, opts = PGDialect_asyncpg().create_connect_args(u)
        # What SQLAlchemy hands asyncpg.connect: every host with its port, read-write only.
        assert opts["host"] == ["pg-a.example", "pg-b.example"] and opts["port"] == [5432, 5432]
        assert opts["target_session_attrs"] == "read-write"
        assert parse_qs(urlsplit(str(u)).query)["target_session_attrs"] == ["read-write"]


def test_kubernetes_files_are_all_applied_and_every_secret_is_a_template() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kust["resources"])
    # Applied by hand first (docs/operations.md): the filled-in Secret and the migrations Job.
    by_hand = {"secret.example.yaml", "migrate-job.yaml", "kustomization.yaml"}
    assert listed == {f.name for f in K8S.glob("*.yaml")} - by_hand - {"secret.yaml"}
    for s in k8s("Secret"):
        assert s["_file"] == "secret.example.yaml"
        for k, v in s["stringData"].items():
            if k not in ("XUELIANG_BOOTSTRAP_ADMIN",):
                assert "CHANGE-ME" in v, f"{k} holds a value, not a placeholder"
    for o in k8s_objects():
        if o["kind"] != "Namespace" and o["_file"] != "kustomization.yaml":
            assert o["metadata"]["namespace"] == "xueliang", o["metadata"]["name"]


def app_routes(tmp_path: Path) -> set[str]:
    """The GET routes of the real application (included routers walked, as the every-route test)."""
    from tests.access.test_every_route import app_routes as walk
    from xueliang.api.main import create_app
    from xueliang.app import Platform

    s = load_settings(database={"url": f"sqlite+aiosqlite:///{tmp_path}/routes.db"},
                      storage={"var_dir": str(tmp_path / "var")})
    app = create_app(Platform(s), manage_lifecycle=False)
    return {path for method, path in walk(app) if method == "GET"}


# ---- systemd ----------------------------------------------------------------------------------
def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as (key, value) lists (keys repeat in systemd)."""
    out: dict[str, list[tuple[str, str]]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out[section] = []
        else:
            k, _, v = line.partition("=")
            out[section].append((k.strip(), v.strip()))
    return out


def systemd_node(path: Path, instance: str, host: str = "city-sig-a") -> Node:
    svc = unit(path)["Service"]
    expand: Callable[[str], str] = lambda v: v.replace("%i", instance).replace("%H", host)  # noqa: E731
    env: dict[str, str] = {}
    for k, v in svc:
        if k == "EnvironmentFile":
            optional = v.startswith("-")
            f = Path(expand(v.lstrip("-")))
            assert f.parent == Path("/etc/xueliang"), v
            local = SYSTEMD / f.name
            if optional and not local.with_name(local.name + ".example").exists():
                continue
            env.update(read_env_file(example_of(local)))
        elif k == "Environment":
            for part in shlex.split(expand(v)):
                name, _, value = part.partition("=")
                env[name] = value
    argv = shlex.split(expand(dict(svc)["ExecStart"]))
    assert Path(argv[0]).name == "xueliang", argv[0]
    writable = [expand(p) for k, v in svc if k == "ReadWritePaths" for p in v.split()]
    return Node(f"systemd {path.name} ({instance})", argv[1:], env,
                {"/etc/xueliang/xueliang.toml": SYSTEMD / "xueliang.toml"}, writable)


@pytest.mark.parametrize("role", sorted(SERVED_ROLES))
def test_systemd_template_unit_runs_each_role(role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = SYSTEMD / "xueliang@.service"
    node = systemd_node(path, role)
    s = effective(node, monkeypatch).settings
    assert s is not None and node.role == role
    check_cluster_node(node, s)
    assert s.cluster.node_id == f"city-sig-a-{role}"
    svc = dict(unit(path)["Service"])
    assert svc["Restart"] == "on-failure" and svc["NoNewPrivileges"] == "yes"
    assert svc["ProtectSystem"] == "strict" and svc["PrivateTmp"] == "yes"
    # What systemd creates is what the node writes (StateDirectory= under /var/lib, LogsDirectory=
    # under /var/log).
    assert s.storage.var_dir == Path("/var/lib") / svc["StateDirectory"].replace("%i", role)
    assert s.access.audit_heads_file is not None
    assert s.access.audit_heads_file.parent == Path("/var/log") / svc["LogsDirectory"].replace("%i", role)
    # No capability: every port the node binds is above 1024.
    assert svc["AmbientCapabilities"] == "" and svc["CapabilityBoundingSet"] == ""
    assert all(port > 1024 for port, _ in role_ports(s, role)), "bind below 1024 needs CAP_NET_BIND_SERVICE"


def test_systemd_roles_on_one_host_bind_different_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host may run every role (xueliang@api, @signalling, @media, @worker)."""
    bound: dict[tuple[int, str], str] = {}
    for role in sorted(SERVED_ROLES):
        s = effective(systemd_node(SYSTEMD / "xueliang@.service", role), monkeypatch).settings
        assert s is not None
        for port in role_ports(s, role):
            assert port not in bound, f"{role} and {bound[port]} both bind {port}"
            bound[port] = role


def test_systemd_migration_unit_runs_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    node = systemd_node(SYSTEMD / "xueliang-migrate.service", "")
    r = effective(node, monkeypatch)
    assert node.args[:2] == ["db", "upgrade"] and r.migrated
    # The owner's URL of migrate.env wins over the service role's of xueliang.env.
    assert make_url(r.migrated).username == "xueliang"
    template = dict(unit(SYSTEMD / "xueliang@.service")["Unit"])
    assert "xueliang-migrate.service" in template["After"] and "xueliang-migrate.service" in template["Wants"]


def test_filled_in_secrets_are_kept_out_of_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    for pattern in ("deploy/compose/*.env", "deploy/kubernetes/secret.yaml", "deploy/systemd/*.env"):
        assert pattern in ignored, pattern
    # and out of the image's build context
    assert {"deploy/compose/*.env", "deploy/kubernetes/secret.yaml"} <= set((ROOT / ".dockerignore").read_text().split())


def test_every_settings_file_is_valid_toml_and_every_example_has_no_secret() -> None:
    for f in DEPLOY.rglob("*.toml"):
        tomllib.loads(f.read_text())
    for f in DEPLOY.rglob("*.example"):
        for k, v in read_env_file(f).items():
            if any(w in k for w in ("PASSWORD", "SECRET", "KEY", "URL")) and "ADMIN" not in k:
                assert "CHANGE-ME" in v, f"{f.name}: {k} holds a value, not a placeholder"


def test_systemd_accepts_every_directive(tmp_path: Path) -> None:
    """systemd's own parser: a misspelt or unknown directive is only a warning at run time
    ("Unknown key ..., ignoring"), which would silently drop a hardening line."""
    import subprocess

    for f in SYSTEMD.glob("*.service"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(SYSTEMD / "xueliang@.service", tmp_path / "xueliang@signalling.service")
    units = [str(tmp_path / "xueliang@signalling.service"), str(tmp_path / "xueliang-migrate.service")]
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True,
                       timeout=120)
    # The program is not installed on the test machine; that is the one complaint allowed.
    lines = [ln for ln in (p.stdout + p.stderr).splitlines()
             if ln.strip() and "/opt/xueliang/venv/bin/xueliang is not executable" not in ln]
    assert lines == [], "\n".join(lines)
