"""The stand-ins refuse what the real CLIs refuse, with their words and exit codes, before starting anything.

No lab runs here: each call fails (or answers) on its own; ``test_end_to_end.py`` covers what they start.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import REPO
from .harness import FAIL_ENV, Harness
from .harness.composefile import interpolate, parse_env_file
from .harness.flags import Command, UsageError, flags, go_duration, parse

CONFIG = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": "lab",
          "nodes": [*({"role": "control-plane", "kubeadmConfigPatches": [
              f"kind: {'InitConfiguration' if i == 1 else 'JoinConfiguration'}\nnodeRegistration:\n"
              f"  name: server-{i}\n"]} for i in (1, 2, 3)),
                    *({"role": "worker", "kubeadmConfigPatches": [
                        f"kind: JoinConfiguration\nnodeRegistration:\n  name: agent-{i}\n"]} for i in (1, 2))]}


def run(harness: Harness, *argv: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, env={**os.environ, **harness.env},
                          timeout=timeout, cwd=cwd)


def test_go_durations_and_pflag_parsing() -> None:
    assert go_duration("5m") == 300 and go_duration("1h2m3.5s") == 3723.5 and go_duration("0") == 0
    for bad, message in (("5", 'time: missing unit in duration "5"'), ("5x", 'time: unknown unit "x" in duration "5x"'),
                         ("m", 'time: invalid duration "m"')):
        with pytest.raises(ValueError, match=message):
            go_duration(bad)
    cmd = Command("docker compose down", "usage", flags("volumes/v:bool timeout/t:int rmi file/f:stringArray"),
                  max_args=None)
    parsed = parse(cmd, ["-vt5", "--rmi=all", "-f", "a.yaml", "svc", "--file", "b.yaml"])
    assert parsed.values == {"volumes": True, "timeout": 5, "rmi": "all", "file": ["a.yaml", "b.yaml"]}
    assert parsed.args == ["svc"]
    for argv, message in ((["--nope"], "unknown flag: --nope"), (["-x"], "unknown shorthand flag: 'x' in -x"),
                          (["--rmi"], "flag needs an argument: --rmi"), (["-t"], "flag needs an argument: 't' in -t"),
                          (["-t", "x"], 'invalid argument "x" for "-t, --timeout" flag: strconv.ParseInt: parsing '
                                        '"x": invalid syntax')):
        with pytest.raises(UsageError) as err:
            parse(cmd, argv)
        assert err.value.message == message


def test_compose_interpolates_as_compose_does() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${SET:+a} ${EMPTY+a} $$ $SET", env, "p") == \
        "x d  d a a $ x"
    assert interpolate("${UNSET:-${SET}}", env, "p") == "x"
    assert parse_env_file('A="1 2"\nexport B=$A # note\n# c\nC=\'$A\'\n', {}) == {"A": "1 2", "B": "1 2", "C": "$A"}


def test_every_call_is_recorded_and_a_failure_can_be_injected(harness: Harness) -> None:
    assert run(harness, "kind", "version").stdout.startswith("kind v0.32.0")
    res = run(harness, "kind", "get", "clusters")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "No kind clusters found.\n")
    failing = subprocess.run(["helm", "version"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, **harness.env, FAIL_ENV: "helm version"})
    assert failing.returncode == 1 and failing.stderr == "helm: failing as asked (stand-in)\n"
    assert [(r["argv"], r["exit"]) for r in harness.records()] == [
        (["kind", "version"], 0), (["kind", "get", "clusters"], 0), (["helm", "version"], 1)]


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["docker", "stop", "--nope", "x"], 125, "unknown flag: --nope\n\nUsage:  docker stop [OPTIONS] CONTAINER "
                                             "[CONTAINER...]\n\nRun 'docker stop --help' for more information\n"),
    (["docker", "stop"], 125, '"docker stop" requires at least 1 argument'),
    (["docker", "kill", "-s"], 125, "flag needs an argument: 's' in -s"),
    (["docker", "frob"], 1, "docker: unknown command: docker frob\n"),
    (["docker", "stop", "lab-worker"], 1, "Error response from daemon: No such container: lab-worker\n"),
    (["docker", "push", "localhost:5001/shop/x:1"], 1, "An image does not exist locally with the tag: "
                                                       "localhost:5001/shop/x\n"),
    (["docker", "info", "--format", "{{.Nope}}"], 1, "template: :1:2: executing \"\" at <.Nope>: can't evaluate "
                                                     "field Nope in type system.dockerInfo\n"),
    (["docker", "compose", "frob"], 1, 'unknown docker command: "compose frob"\n'),
    (["docker", "compose", "--file", "compose/compose.yaml", "up", "--detatch"], 125, "unknown flag: --detatch"),
    (["docker", "compose", "--project-name", "lab", "--file", "compose/compose.yaml", "up", "--wait"], 1,
     "error while interpolating services.haproxy.image: required variable LABKIT_HAPROXY_IMAGE is missing a value: "
     "render compose.env with labkit first\n"),
    (["kind", "create", "cluster", "--nmae", "x"], 1, "ERROR: unknown flag: --nmae\n"),
    (["kind", "frob"], 1, 'ERROR: unknown command "frob" for "kind"\n'),
    (["kind", "export", "kubeconfig", "--name", "x"], 1, "ERROR: could not locate any control plane nodes for "
                                                         "cluster named 'x'. Use the --name option to select a "
                                                         "different cluster\n"),
    (["helm", "upgrade", "x"], 1, 'Error: "helm upgrade" requires 2 arguments\n\nUsage:  helm upgrade [RELEASE] '
                                  "[CHART] [flags]\n"),
    (["helm", "upgrade", "a", "b", "--timeout", "5"], 1, 'Error: invalid argument "5" for "--timeout" flag: time: '
                                                         'missing unit in duration "5"\n'),
])
def test_refusals_in_the_real_tools_words(harness: Harness, argv: list[str], code: int, message: str) -> None:
    res = run(harness, *argv, cwd=REPO)
    assert res.returncode == code and res.stderr.startswith(message), res.stderr
    assert harness.records()[-1]["exit"] == code


def _compose_project(tmp_path: Path, service: dict, top: dict | None = None) -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump({"services": {"web": {"image": "registry:3", **service}}, **(top or {})}))
    return path


@pytest.mark.parametrize(("service", "top", "message"), [
    ({"ports": [{"target": 5000, "published": 1, "bogus": 2}]}, None,
     "services.web.ports.0 additional properties 'bogus' not allowed"),
    ({"healthcheck": {"retries": [1]}}, None, "services.web.healthcheck.retries must be a number or string"),
    ({"image": "registry:3${"}, None, "invalid interpolation format for services.web.image.\nYou may need to "
                                      "escape any $ with another $.\nregistry:3${"),
    ({"ports": ["5001:5000"]}, None, "service web publishes 5001:5000 on every address: the lab publishes on "
                                     "127.0.0.1 only"),
    ({"networks": ["kind"]}, {"networks": {"kind": {"external": True}}},
     "network kind declared as external, but could not be found"),
    ({"image": "nginx:1"}, None, "Error response from daemon: the kind harness cannot run image nginx:1"),
])
def test_compose_refuses_a_bad_project(harness: Harness, tmp_path: Path, service: dict, top: dict | None,
                                       message: str) -> None:
    path = _compose_project(tmp_path, service, top)
    res = run(harness, "docker", "compose", "--project-name", "p", "--file", str(path), "up", "--detach")
    assert res.returncode == 1 and message in res.stderr, res.stderr
    assert harness.state.containers() == {}


def _kind_config(tmp_path: Path, **changes: object) -> Path:
    config = {**CONFIG, **changes}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "Lab_1"}, "'Lab_1' is not a valid cluster name, cluster names must match `^[a-z0-9.-]+$`"),
    ({"apiVersion": "kind.x-k8s.io/v1alpha3"}, "unknown apiVersion: kind.x-k8s.io/v1alpha3"),
    ({"networking": {"ipFamily": "ipv5"}}, "invalid ipFamily: ipv5"),
    ({"nodes": [{"role": "worker"}]}, "must have at least one control-plane node"),
    ({"nodes": [{"role": "control-plane", "extraPortMappings": [{"containerPort": 80, "hostPort": 8080},
                                                                {"containerPort": 81, "hostPort": 8080}]}]},
     "invalid configuration for node 0: invalid portMapping: port mapping with same listen address, port and "
     "protocol already configured: 0.0.0.0:8080/TCP"),
    ({"nodes": [{"role": "control-plane", "image": 7}]}, "unable to decode config: yaml: unmarshal errors:\n"
                                                         "  line 6: cannot unmarshal !!int `7` into string"),
    ({"nodes": [{"role": "control-plane"}]}, "the kind harness runs a sim lab whose nodes are server-1, server-2, "
                                             "server-3 (control-plane) and agent-1, agent-2 (worker)"),
    ({"nodes": [*CONFIG["nodes"][:4], {**CONFIG["nodes"][4], "extraPortMappings": [
        {"containerPort": 30080, "hostPort": 1}]}]}, "node agent-2 publishes port 30080 on 0.0.0.0: the lab "
                                                     "publishes on 127.0.0.1 only"),
])
def test_kind_refuses_a_bad_config(harness: Harness, tmp_path: Path, changes: dict, message: str) -> None:
    res = run(harness, "kind", "create", "cluster", "--config", str(_kind_config(tmp_path, **changes)))
    assert res.returncode == 1 and res.stderr.startswith(f"ERROR: failed to create cluster: {message}"), res.stderr
    assert harness.state.clusters() == [] and harness.state.sim_homes() == []
