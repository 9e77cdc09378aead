"""Every file the kind backend writes, rendered for a fresh lab home and validated."""

from __future__ import annotations

import json
import math
import re
import socket
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from labkit.backends.kind.backend import up_commands
from labkit.backends.kind.lab import PROFILE_ENV, KindLab, docker_gb, load, planned_ports, profile_ram_mb
from labkit.core.checkout import Checkout
from labkit.core.paths import LabPaths
from labkit.core.timings import timings
from labkit.haproxy.kind import HAProxyKind
from labkit.kube.kind import KubernetesKind
from labkit.registry.kind import RegistryKind

from .conftest import REPO, SCHEMAS


def _schema(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    # compose-spec.json names draft-07 without the trailing '#', which jsonschema does not recognise
    cls = jsonschema.Draft7Validator if "draft-07" in schema["$schema"] else jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema)


def _patch(node: dict, kind_name: str) -> dict:
    docs = [yaml.safe_load(p) for p in node.get("kubeadmConfigPatches", [])]
    return next(d for d in docs if d["kind"] == kind_name)


def test_kind_config_is_valid_and_names_the_nodes_like_rke2(rendered: KindLab) -> None:
    config = yaml.safe_load(KubernetesKind.config_file(rendered).read_text())
    _schema("kind-cluster-v1alpha4.schema.json").validate(config)
    assert config["name"] == rendered.cluster and re.fullmatch(r"labkit-[0-9a-f]{8}", rendered.cluster)

    nodes = config["nodes"]
    assert [n["role"] for n in nodes] == ["control-plane"] * 3 + ["worker"] * 2
    names = [_patch(n, "InitConfiguration" if i == 0 else "JoinConfiguration")["nodeRegistration"]["name"]
             for i, n in enumerate(nodes)]
    assert names == ["server-1", "server-2", "server-3", "agent-1", "agent-2"]
    assert list(rendered.node_containers) == names
    versions = Checkout.find().versions
    assert all(n["image"] == versions["kind"]["node_image"] for n in nodes)
    assert re.search(r"@sha256:[0-9a-f]{64}$", versions["kind"]["node_image"])

    # the HAProxy's name is in the API server certificate (kind merges certSANs)
    cluster_patch = yaml.safe_load(config["kubeadmConfigPatches"][0])
    assert cluster_patch["kind"] == "ClusterConfiguration" and "apiVersion" not in cluster_patch
    assert rendered.container("haproxy") in cluster_patch["apiServer"]["certSANs"]
    # Harbor's NodePort is the registry port itself: the range is widened down to it (and keeps the stock top)
    registry_port = rendered.ports["registry"]
    low, high = map(int, cluster_patch["apiServer"]["extraArgs"]["service-node-port-range"].split("-"))
    assert low <= registry_port <= high and (low, high) == (min(registry_port, 30000), max(registry_port, 32767))
    assert config["networking"]["kubeProxyMode"] == "iptables"  # NodePorts on a node's localhost (containerd's)
    # the lab's timings: a stopped node NotReady after 20 s, not 50 s (map form without apiVersion: kind v0.32
    # converts it to kubeadm v1beta4's name/value list and merges it by name)
    kind_timings = timings("kind")
    assert cluster_patch["controllerManager"]["extraArgs"] == {
        "node-monitor-grace-period": f"{kind_timings.not_ready_seconds:.0f}s"}
    kubelet_patch = yaml.safe_load(config["kubeadmConfigPatches"][1])
    assert kubelet_patch == {"kind": "KubeletConfiguration",
                             "nodeLeaseDurationSeconds": int(kind_timings.heartbeat_seconds * 4)}

    # the registry host configuration is mounted on every node, NodePorts published on loopback only
    for node in nodes:
        assert node["extraMounts"] == [{"hostPath": str(rendered.certs_dir), "readOnly": True,
                                        "containerPath": "/etc/containerd/certs.d"}]
    mappings = {name: n.get("extraPortMappings", []) for name, n in zip(names, nodes, strict=True)}
    # logging's, last on each node: its own Fluent Bit's monitoring API, Elasticsearch's and Kibana's on theirs
    es, kibana, fluentbit = (versions["charts"][c] for c in ("elasticsearch", "kibana", "fluent-bit"))
    for name in names:
        logging = [{"containerPort": chart["node_port"], "hostPort": rendered.ports[port],
                    "listenAddress": "127.0.0.1", "protocol": "TCP"}
                   for chart, port in ((es, "elasticsearch"), (kibana, "kibana")) if name == es["node"]] + \
            [{"containerPort": fluentbit["metrics_port"], "hostPort": rendered.ports[f"fluentbit-{name}"],
              "listenAddress": "127.0.0.1", "protocol": "TCP"}]
        assert mappings[name][-len(logging):] == logging
        mappings[name] = mappings[name][:-len(logging)]
    # the mesh's, before logging's on its node: Jaeger's query and OTLP/HTTP, Kiali
    jaeger, kiali = versions["charts"]["jaeger"], versions["charts"]["kiali-server"]
    mesh = [{"containerPort": port, "hostPort": rendered.ports[key], "listenAddress": "127.0.0.1", "protocol": "TCP"}
            for port, key in ((jaeger["node_port"], "jaeger"), (jaeger["otlp_node_port"], "jaeger-otlp"),
                              (kiali["node_port"], "kiali"))]
    assert mappings[jaeger["node"]][-len(mesh):] == mesh
    mappings[jaeger["node"]] = mappings[jaeger["node"]][:-len(mesh)]
    harbor_node = versions["charts"]["harbor"]["node"]
    assert harbor_node in ("server-2", "server-3", "agent-2")  # never stopped by a lesson (server-1, agent-1 are)
    assert mappings["agent-1"] == [{"containerPort": versions["shop"]["gateway_nodeport"],
                                    "hostPort": rendered.ports["gateway"], "listenAddress": "127.0.0.1",
                                    "protocol": "TCP"}]
    argocd = versions["charts"]["argo-cd"]
    assert argocd["node"] in ("server-2", "server-3", "agent-2")
    argocd_mapping = {"containerPort": argocd["node_port"], "hostPort": rendered.ports["argocd"],
                      "listenAddress": "127.0.0.1", "protocol": "TCP"}
    monitoring = versions["charts"]["kube-prometheus-stack"]
    monitoring_mappings = [{"containerPort": monitoring[key], "hostPort": rendered.ports[port],
                            "listenAddress": "127.0.0.1", "protocol": "TCP"}
                           for key, port in (("node_port", "prometheus"), ("grafana_node_port", "grafana"))]
    assert mappings[harbor_node] == [{"containerPort": registry_port, "hostPort": registry_port,
                                      "listenAddress": "127.0.0.1", "protocol": "TCP"}] + \
        ([argocd_mapping] if argocd["node"] == harbor_node else []) + \
        (monitoring_mappings if monitoring["node"] == harbor_node else [])
    assert argocd_mapping in mappings[argocd["node"]]  # Argo CD's API server from 127.0.0.1:<ports.argocd>
    assert all(m in mappings[monitoring["node"]] for m in monitoring_mappings)  # Prometheus', Grafana's NodePorts
    assert all(not m for name, m in mappings.items()
               if name not in ("agent-1", harbor_node, argocd["node"], monitoring["node"]))
    assert 'config_path = "/etc/containerd/certs.d"' in config["containerdConfigPatches"][0]


def test_kind_schema_catches_what_kind_rejects() -> None:
    validator = _schema("kind-cluster-v1alpha4.schema.json")
    good = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [{"role": "control-plane"}]}
    validator.validate(good)
    for bad in ({**good, "node": []},                                       # unknown field (strict decoding)
                {**good, "nodes": [{"role": "master"}]},                     # not a role
                {**good, "name": "Lab_1"},                                   # cluster name pattern
                {**good, "nodes": [{"role": "worker", "extraPortMappings": [{"hostPort": 70000}]}]}):
        assert not validator.is_valid(bad), bad


def test_registry_hosts_toml_and_configmap(rendered: KindLab) -> None:
    versions = Checkout.find().versions
    hosts = rendered.certs_dir / versions["registry"]["cluster_name"] / "hosts.toml"
    data = tomllib.loads(hosts.read_text())
    upstream = f"http://localhost:{rendered.ports['registry']}"  # Harbor's NodePort on the node's own localhost
    assert data["server"] == upstream and data["host"][upstream]["capabilities"] == ["pull", "resolve"]

    manifest = yaml.safe_load(RegistryKind.hosting_manifest(rendered).read_text())
    k8s = re.search(r":v(\d+\.\d+)\.", versions["kind"]["node_image"]).group(1) + ".0"
    kubernetes_validate.validate(manifest, k8s, strict=True)
    hosting = yaml.safe_load(manifest["data"]["localRegistryHosting.v1"])
    assert hosting["host"] == f"localhost:{rendered.ports['registry']}"
    assert hosting["hostFromContainerRuntime"] == versions["registry"]["cluster_name"]
    assert hosting["hostFromClusterNetwork"] == "harbor.harbor.svc.cluster.local:80"


def test_harbor_values_avoid_the_realm_and_x509_pitfalls(rendered: KindLab) -> None:
    """The chart's values: a plain-HTTP NodePort that is the registry port, an externalURL (the token realm)
    naming that same port on localhost, the lab's admin password, every component on the published node."""
    from labkit.core.secrets import REGISTRY_PASSWORD, Secrets
    from labkit.registry.kind import COMPONENTS

    versions = Checkout.find().versions
    path = RegistryKind.values_file(rendered)
    values = yaml.safe_load(path.read_text())
    port = rendered.ports["registry"]
    assert values["expose"] == {"type": "nodePort", "tls": {"enabled": False},
                                "nodePort": {"name": "harbor", "ports": {"http": {"port": 80, "nodePort": port}}}}
    assert values["externalURL"] == f"http://localhost:{port}"
    assert values["harborAdminPassword"] == Secrets(rendered.paths.secrets).get(REGISTRY_PASSWORD)
    assert len(values["secretKey"]) == 16
    node = versions["charts"]["harbor"]["node"]
    for component in COMPONENTS:
        spec = values[component]["internal"] if component in ("database", "redis") else values[component]
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": node}, component
    # the push credentials the shop's images are pushed with (docker --config), for that same host name
    config = json.loads((rendered.docker_config / "config.json").read_text())
    assert list(config["auths"]) == [f"localhost:{port}"]


def test_harbor_is_installed_then_provisioned_before_the_shop_pushes(rendered: KindLab) -> None:
    commands = up_commands(rendered, cluster_exists=False)
    titles = [c.title for c in commands]
    helm = next(i for i, c in enumerate(commands) if c.argv[:4] == ["helm", "upgrade", "--install", "harbor"])
    provision = next(i for i, c in enumerate(commands) if "labkit.registry.provision" in c.argv)
    pushes = [i for i, c in enumerate(commands) if "push" in c.argv and c.argv[0] == "docker"]
    assert helm < provision < min(pushes), titles
    create = next(i for i, c in enumerate(commands) if c.argv[:3] == ["kind", "create", "cluster"])
    assert create < helm  # Harbor lives in the cluster
    argv = commands[provision].argv
    assert argv[argv.index("--wait") + 1] == str(Checkout.find().versions["charts"]["harbor"]["ready_seconds"])
    for i in pushes:  # with the lab's Docker configuration, not the laptop's ~/.docker
        assert commands[i].argv[1:3] == ["--config", str(rendered.docker_config)]


def _compose_env(path: Path) -> dict[str, str]:
    return {k: v.strip('"') for k, _, v in (line.partition("=") for line in path.read_text().splitlines())}


def _interpolate(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if name in env:
            return env[name]
        assert op == ":-", f"${{{name}}} has no value and no default"
        return arg
    return re.sub(r"\$\{([A-Z_]+)(?:(:[-?])([^}]*))?\}", sub, text)


def test_compose_file_matches_the_compose_spec(rendered: KindLab) -> None:
    validator = _schema("compose-spec.json")
    raw = (REPO / "compose" / "compose.yaml").read_text()
    validator.validate(yaml.safe_load(raw))                      # as checked in, with ${...}
    env = _compose_env(rendered.compose_env)
    compose = yaml.safe_load(_interpolate(raw, env))
    validator.validate(compose)                                  # as docker compose reads it
    assert not validator.is_valid({"services": {"haproxy": {"imagee": "x"}}})  # the schema does reject

    versions = Checkout.find().versions
    services = compose["services"]
    assert services["haproxy"]["image"] == versions["images"]["haproxy"]
    assert "registry" not in services  # Harbor runs in the cluster (its helm chart), not beside it
    assert compose["networks"]["kind"] == {"external": True}
    published = {}
    for svc in services.values():
        assert svc["networks"] == ["kind"]
        for port in svc["ports"]:
            host, host_port, container = port.split(":")
            assert host == "127.0.0.1", f"{port} is not loopback-only"
            published[int(host_port)] = int(container)
    assert sorted(published) == sorted(rendered.ports[k] for k in ("api", "http", "stats", "runtime",
                                                                   "gitlab", "nexus"))
    assert services["gitlab"]["image"] == versions["images"]["gitlab"] and services["gitlab"]["profiles"] == ["gitlab"]
    assert published[rendered.ports["gitlab"]] == rendered.ports["gitlab"]  # external_url's port, inside too
    nexus = services["nexus"]
    assert nexus["image"] == versions["images"]["nexus"] and nexus["profiles"] == ["nexus"]
    assert published[rendered.ports["nexus"]] == 8081 and nexus["user"] == "200:200"  # the image's nexus user
    assert nexus["volumes"] == ["nexus-data:/nexus-data"] and "nexus-data" in compose["volumes"]
    heap = re.search(r"-Xmx(\d+)([mg])", nexus["environment"]["INSTALL4J_ADD_VM_PARAMS"])
    heap_mb = int(heap.group(1)) * (1024 if heap.group(2) == "g" else 1)
    assert heap_mb < versions["modules"]["nexus"]["ram_mb"]  # the JVM fits what the profile table counts
    assert "/service/rest/v1/status" in " ".join(nexus["healthcheck"]["test"])
    from labkit.haproxy.config import CONTAINER_PORTS
    haproxy_targets = {int(p.split(":")[2]) for p in services["haproxy"]["ports"]}
    assert haproxy_targets == set(CONTAINER_PORTS.values())
    assert services["haproxy"]["volumes"] == [f"{HAProxyKind.config_file(rendered).parent}:/usr/local/etc/haproxy:ro"]


def test_versions_profiles_and_readme_ram_table_agree() -> None:
    versions = Checkout.find().versions
    readme = (REPO / "README.md").read_text()
    for profile, spec in versions["profiles"].items():
        assert set(spec["modules"]) <= set(versions["modules"]), profile
        ram = profile_ram_mb(versions, profile)
        assert spec["docker_gb"] == docker_gb(ram) == math.ceil((ram + 1024) / 1024)
        row = re.search(rf"^\| {profile} \|.*$", readme, re.M)
        assert row, f"README has no RAM table row for {profile}"
        assert f"| {ram / 1024:.1f} GiB | {spec['docker_gb']} GB |" in row.group(0), row.group(0)
    minimal = set(versions["profiles"]["minimal"]["modules"])
    assert minimal <= set(versions["profiles"]["standard"]["modules"]) <= set(versions["profiles"]["full"]["modules"])
    assert all(versions["modules"][m].get("status") != "planned" for m in minimal)


def test_planned_compose_profiles_are_not_pretended(rendered: KindLab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, "full")
    checkout = Checkout.find()
    lab = load(rendered.paths, checkout)
    commands = up_commands(lab, cluster_exists=True)
    assert lab.profile == "full" and not any(c.argv[:2] == ["kind", "create"] for c in commands)
    compose_up = next(c.argv for c in commands if "compose" in c.argv)
    profiles = [compose_up[i + 1] for i, a in enumerate(compose_up) if a == "--profile"]
    assert profiles == ["gitlab", "nexus"]  # harbor has no service yet
    assert [c.argv[3] for c in commands if c.argv[0] == "helm"] == ["harbor", "metrics-server", "gitlab-runner",
                                                                     "argocd", "kube-prometheus-stack",
                                                                     "elasticsearch", "fluent-bit", "kibana",
                                                                     "istio-base", "jaeger", "istiod",
                                                                     "istio-ingressgateway", "kiali-server"]
    monkeypatch.setenv(PROFILE_ENV, "huge")
    with pytest.raises(RuntimeError, match="unknown kind profile"):
        load(rendered.paths, checkout)


def test_each_home_gets_its_own_cluster_and_keeps_its_ports(tmp_path: Path) -> None:
    checkout = Checkout.find()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        versions = checkout.versions
        checkout.__dict__["versions"] = {**versions, "ports": {**versions["ports"], "api": taken}}
        a = load(LabPaths.resolve(tmp_path / "a"), checkout)
    b = load(LabPaths.resolve(tmp_path / "b"), Checkout.find())
    assert a.cluster != b.cluster
    assert a.ports["api"] != taken and len(set(a.ports.values())) == len(a.ports)
    assert load(LabPaths.resolve(tmp_path / "a"), Checkout.find()).ports == a.ports
    assert planned_ports(a.paths) == a.ports
