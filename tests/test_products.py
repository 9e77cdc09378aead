"""``labkit.products`` is the one list of products: everything that enumerates products agrees with it,
every product package has the same shape, and the import graph keeps its layers."""

from __future__ import annotations

import ast
from pathlib import Path

from labkit import views
from labkit.backends.sim.daemon import wanted
from labkit.chapters import CHAPTERS
from labkit.core.checkout import Checkout
from labkit.lab import Lab
from labkit.products import PRODUCTS

LABKIT = Path(__file__).resolve().parents[1] / "labkit"
NAMES = [p.name for p in PRODUCTS]
# the package each built product lives in (a product's code is one package; planned ones have none yet)
PACKAGES = {"registry": "registry", "docker": "docker", "nexus": "nexus", "shop": "shop", "kubernetes": "kube",
            "haproxy": "haproxy", "gitlab": "gitlab", "argocd": "argocd", "prometheus": "prometheus",
            "logging": "logging", "mesh": "mesh", "jupyterlab": "jupyter"}
PLUMBING = {"core", "images", "backends", "endpoints", "kubeclient", "traffic"}  # what products may import


def test_names_are_unique_and_every_built_product_has_every_side() -> None:
    assert len(set(NAMES)) == len(NAMES)
    for p in PRODUCTS:
        assert p.chapter in CHAPTERS, p.name
        if p.planned:
            assert p.kind_part is None and p.view is None, f"{p.name} is planned but half built"
        elif not p.setting:  # a platform product: sim, kind and notebook sides, one package of the same shape
            assert p.kind_part is not None and p.view is not None, p.name
            package = LABKIT / PACKAGES[p.name]
            assert {"component.py", "kind.py", "lab.py", "views.py"} <= {f.name for f in package.iterdir()}, p.name
    assert set(PACKAGES) == {p.name for p in PRODUCTS if not p.planned}


def test_versions_yaml_has_one_module_per_product_and_profiles_name_products() -> None:
    versions = Checkout.find().versions
    platform = {p.name for p in PRODUCTS if not p.setting}
    assert set(versions["modules"]) == platform
    for profile in versions["profiles"].values():
        assert set(profile["modules"]) <= platform
    for name in versions["modules"]["kubernetes"].get("charts", []):
        assert name in versions["charts"]


def test_the_sim_daemon_and_the_chapters_read_the_list() -> None:
    assert [p.name for p in PRODUCTS if wanted(p, {})] == \
        ["registry", "docker", "nexus", "shop", "kubernetes", "haproxy", "gitlab", "argocd", "prometheus", "logging",
         "mesh"]
    assert [p.name for p in PRODUCTS if wanted(p, {"jupyter": True, "skip": ["shop"]})] == \
        ["registry", "docker", "nexus", "kubernetes", "haproxy", "gitlab", "argocd", "prometheus", "logging", "mesh",
         "jupyterlab"]
    assert {p.name for c in CHAPTERS.values() for p in c.products} == set(NAMES)
    # the end-to-end chapter teaches no product of its own and runs every one of chapters 3-9: a lab without one
    # is told which (kind: the profile that starts them all) before its steps start
    assert not CHAPTERS[10].products
    assert {p.name for p in CHAPTERS[10].needs} == {"gitlab", "nexus", "registry", "docker", "argocd", "prometheus",
                                                     "logging", "mesh"}
    assert set(views._PART_OF.values()) <= set(NAMES)


def test_lab_views_are_the_products_views(shared_lab: Lab) -> None:
    for p in PRODUCTS:
        if p.view is not None:
            assert isinstance(getattr(shared_lab, p.name), p.view)
    assert set(shared_lab.endpoints.products) == {"registry", "docker", "nexus", "shop", "kubernetes", "haproxy",
                                                  "gitlab", "argocd", "prometheus", "logging", "mesh"}
    assert list(shared_lab.status().index) == list(shared_lab.endpoints.products)


def _imports(path: Path) -> set[str]:
    """Absolute ``labkit.*`` modules a file imports at run time (``if TYPE_CHECKING:`` blocks left out)."""
    module = ".".join(path.relative_to(LABKIT.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    guarded = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    skipped = {id(n) for node in guarded for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base) if node.level else (node.module or "")
            found |= {target} | {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m.removeprefix("labkit.").split(".")[0] for m in found if m.startswith("labkit.")}


# what a product's package may import of another's, and why: Istio's webhooks (the sidecar injector and istiod's
# validation) are admission steps of the sim's API server, and its kubelets and service proxies do what Istio's CNI
# (iptables) does for a pod with a sidecar; the real ones live in the cluster too
ALLOWED = {("kube", "mesh"), ("mesh", "kube")}


def test_no_product_imports_another_and_the_layers_hold() -> None:
    owner = {package: name for name, package in PACKAGES.items()}
    for path in LABKIT.rglob("*.py"):
        top = path.relative_to(LABKIT).parts[0].removesuffix(".py")
        imported = _imports(path)
        if top in owner:
            others = {o for o in imported & set(owner) - {top} if (top, o) not in ALLOWED}
            assert not others, f"{path.relative_to(LABKIT)} imports product packages {others}"
            assert not imported & {"lab", "control", "cli", "products", "chapters"}, path
        if top in ("core", "images"):
            assert not imported & (set(owner) | {"lab", "control", "products", "backends"}), path
        if top == "backends":
            assert not imported & {"lab", "control", "cli", "chapters"}, path


def test_the_shop_manifests_use_the_versions_of_versions_yaml() -> None:
    """The tag, the registry name pods pull from and the gateway NodePort live in versions.yaml; the manifests
    (which kubectl and Argo CD read as they are) must say the same."""
    import yaml

    checkout = Checkout.find()
    v = checkout.versions
    docs = [d for f in sorted((checkout.root / "manifests" / "apps").glob("*.yaml"))
            for d in yaml.safe_load_all(f.read_text()) if d]
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"]
    images = {c["image"] for pod in pods for c in pod["containers"]}
    assert images == {f"{v['registry']['cluster_name']}/shop/{app}:{v['shop']['tag']}" for app in checkout.apps()}
    ports = [p.get("nodePort") for d in docs if d["kind"] == "Service" for p in d["spec"]["ports"] if "nodePort" in p]
    assert sorted(ports) == sorted([v["shop"]["gateway_nodeport"], v["shop"]["catalog_nodeport"]])
    evictions = {t["tolerationSeconds"] for pod in pods for t in pod["tolerations"]}
    assert evictions == {v["timings"]["eviction_seconds"]}
