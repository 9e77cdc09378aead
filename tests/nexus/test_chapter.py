"""Chapter 04 on a running sim lab: the lessons' operations through real pip, the Diagnose fault, and
``lab.chapter(n)`` undoing what an interrupted chapter 04 left, for any chapter."""

from __future__ import annotations

from pathlib import Path

from labkit.lab import Lab


def test_chapter_04_lessons_fault_and_repair(lab: Lab) -> None:
    lab.chapter(4)
    nexus = lab.nexus
    assert nexus.upstream()["stand_in"]  # the tests' machine has no index: the labelled stand-in
    nexus.forget("iniconfig", "idna")
    run = nexus.install(nexus.shop_requirements, run="cold")
    assert run.set_index("package").loc["idna", "cache"] == "miss" and len(run) >= 10
    assert (nexus.install(nexus.shop_requirements, run="warm")["cache"] == "hit").all()
    assert {"idna", "prometheus-client"} <= nexus.cached()

    nexus.upstream_off()
    assert nexus.download("idna").ok
    refused = nexus.download("iniconfig")
    assert not refused.ok and "No matching distribution found for iniconfig" in refused.output
    assert "Blocked" in nexus.remote_status().loc["pypi-proxy", "status"]

    lab.inject_fault()  # pypi-group without its proxy: nothing installs through the group
    assert not nexus.download("idna").ok
    lab.chapter(2)  # any chapter repairs Nexus first: the builds of chapters 03 and 05 go through it
    assert {"nexus: the stand-in upstream started again", "nexus: pypi-group updated"} <= set(lab.repaired)
    assert nexus.download("iniconfig").ok and "iniconfig" in nexus.cached()
    assert nexus.resolve_maven(nexus.maven_example())["sha1_ok"].all()
    lab.chapter(4)
    assert lab.repaired == []


def test_the_runners_jobs_install_through_the_group(lab: Lab) -> None:
    """A CI job's pip asks Nexus only, though this machine's pip settings (the tests' PIP_NO_INDEX and
    PIP_FIND_LINKS) reach the sim's jobs."""
    lab.nexus.forget("pluggy")

    def edit(work: Path) -> None:
        (work / ".gitlab-ci.yml").write_text('fetch:\n  script: ["pip download --no-deps -d dl pluggy"]\n')

    lab.gitlab.commit(edit, "ci: fetch pluggy")
    pipeline = lab.gitlab.pipeline_for(lab.gitlab.head())["id"]
    lab.gitlab.watch(pipeline)
    trace = lab.gitlab.trace(lab.gitlab.jobs(pipeline)[0]["id"])
    assert f"Looking in indexes: {lab.nexus.index_url}" in trace and "Successfully downloaded pluggy" in trace, trace
    assert "pluggy" in lab.nexus.cached()
