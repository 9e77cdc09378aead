"""JUnit XML reports (``artifacts:reports:junit``) as GitLab's pipeline test report
(``GET /projects/:id/pipelines/:pipeline_id/test_report``): one test suite per job, the cases with their status."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

_COUNTS = ("success", "failed", "skipped", "error")


def _case(node: ET.Element, suite: str) -> dict[str, Any]:
    status, trace = "success", None
    for kind, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        found = node.find(kind)
        if found is not None:
            status = name
            trace = "\n".join(t for t in (found.get("message"), found.text) if t) or None
            break
    out = node.find("system-out")
    return {"status": status, "name": node.get("name", ""), "classname": node.get("classname", suite),
            "file": node.get("file"), "execution_time": float(node.get("time") or 0),
            "system_output": trace if status != "success" else (out.text if out is not None else None),
            "stack_trace": trace, "recent_failures": None}


def suite(name: str, xml_documents: list[bytes]) -> dict[str, Any]:
    """One job's test suite from its JUnit files (several ``<testsuite>`` elements are merged)."""
    cases: list[dict[str, Any]] = []
    errors: list[str] = []
    for doc in xml_documents:
        try:
            root = ET.fromstring(doc)
        except ET.ParseError as err:
            errors.append(f"JUnit XML parsing failed: {err}")
            continue
        suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
        for s in suites:
            cases += [_case(c, s.get("name", name)) for c in s.findall("testcase")]
    counts = {k: sum(1 for c in cases if c["status"] == k) for k in _COUNTS}
    return {"name": name, "total_time": round(sum(c["execution_time"] for c in cases), 3),
            "total_count": len(cases), **{f"{k}_count": v for k, v in counts.items()},
            "suite_error": "; ".join(errors) or None, "test_cases": cases}


def report(suites: list[dict[str, Any]]) -> dict[str, Any]:
    """The pipeline's test report: the suites and their totals."""
    return {"total_time": round(sum(s["total_time"] for s in suites), 3),
            "total_count": sum(s["total_count"] for s in suites),
            **{f"{k}_count": sum(s[f"{k}_count"] for s in suites) for k in _COUNTS},
            "test_suites": suites}
