"""Where a build's or a CI job's ``pip`` installs from, as environment variables that override this machine's pip
settings (RUN steps and sim jobs see the host's ``PIP_*``): one index only (the lab's Nexus group), or the
checkout's wheelhouse without any index."""

from __future__ import annotations

from pathlib import Path


def pip_env(wheelhouse: Path, index_url: str | None) -> dict[str, str]:
    """Through ``index_url`` only, whatever this machine's pip reads (``PIP_NO_INDEX=0`` turns a host's no-index
    off, empty find-links and extra indexes drop the host's); else from ``wheelhouse`` when there is one."""
    if index_url:
        return {"PIP_INDEX_URL": index_url, "PIP_NO_INDEX": "0", "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""}
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)} if wheelhouse.is_dir() else {}
