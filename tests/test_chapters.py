"""``lab.chapter(n)`` brings any lab to the chapter's starting state: fresh, further along, or left broken."""

from __future__ import annotations

import time

from labkit.lab import Lab


def test_chapter_repairs_what_an_interrupted_lesson_left(lab: Lab) -> None:
    lab.chapter(1)
    started = time.perf_counter()
    lab.chapter(1)
    assert lab.repaired == [] and time.perf_counter() - started < 5, "nothing to repair should be quick"

    lab.kubernetes.node_stop("agent-1")
    lab.kubernetes.api_server_stop("server-2")
    lab.haproxy.set_balance("leastconn")
    lab.haproxy.disable("agent-2")
    lab.kubectl("set", "env", "deployment/orders", "-n", "shop", "CRASH_ON_START=1", check=True)
    lab.kubectl("scale", "deployment/catalog", "-n", "shop", "--replicas=1", check=True)  # apply reverts it
    pod = next(p.metadata.name for p in lab.kubernetes.core().list_namespaced_pod("shop", label_selector="app=gateway")
               .items if p.spec.node_name == "agent-2")
    assert lab.shop.knob(pod, "/admin/slow?ms=300")["slow_ms"] == 300

    lab.chapter(2)
    assert {"node agent-1 started", "API server of server-2 started", "haproxy balance back to its default",
            "deployment orders back to its manifest",
            f"knobs of {pod} reset"} <= set(lab.repaired)
    assert lab.haproxy.balance() == "roundrobin"
    assert lab.haproxy.servers()["status"].eq("UP").all()
    assert lab.haproxy.servers("kube-apiservers")["status"].eq("UP").all()
    orders = lab.kubernetes.apps().read_namespaced_deployment("orders", "shop")
    assert all(e.name != "CRASH_ON_START" for e in orders.spec.template.spec.containers[0].env)
    assert lab.shop.ready_pods() == (7, 7)
    assert lab.shop.knob(pod, "/admin", "GET")["slow_ms"] == 0
    assert lab.current_chapter == 2
