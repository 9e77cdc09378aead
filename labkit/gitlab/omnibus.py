"""The Omnibus GitLab configuration (``gitlab.rb``) the kind backend gives GitLab CE: memory-constrained
settings (GitLab's "Running GitLab in a memory-constrained environment"), its external URL and the root
password. The standalone simulator reads the same file (``external_url``, ``initial_root_password``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

CONSTRAINED = """\
# memory-constrained settings (docs.gitlab.com/omnibus/settings/memory_constrained_envs)
puma['worker_processes'] = 0
sidekiq['concurrency'] = 10
prometheus_monitoring['enable'] = false
gitlab_rails['env'] = { 'MALLOC_CONF' => 'dirty_decay_ms:1000,muzzy_decay_ms:1000' }
gitaly['env'] = { 'MALLOC_CONF' => 'dirty_decay_ms:1000,muzzy_decay_ms:1000',
                  'GITALY_COMMAND_SPAWN_MAX_PARALLEL' => '2' }
gitlab_rails['usage_ping_enabled'] = false
gitlab_kas['enable'] = false
registry['enable'] = false
gitlab_pages['enable'] = false
"""


def render(external_url: str, root_password: str) -> str:
    """``gitlab.rb`` for the lab's GitLab CE container."""
    return (f"external_url '{external_url}'\n"
            f"gitlab_rails['initial_root_password'] = '{root_password}'\n"
            "gitlab_rails['gitlab_shell_ssh_port'] = 22\n" + CONSTRAINED)


@dataclass(frozen=True)
class OmnibusSettings:
    external_url: str | None = None
    root_password: str | None = None


def parse(text: str) -> OmnibusSettings:
    """What the simulator takes from a ``gitlab.rb``: ``external_url`` and ``initial_root_password``."""
    url = re.search(r"^\s*external_url\s+['\"]([^'\"]+)['\"]", text, re.M)
    password = re.search(r"^\s*gitlab_rails\['initial_root_password'\]\s*=\s*['\"]([^'\"]*)['\"]", text, re.M)
    return OmnibusSettings(url[1] if url else None, password[1] if password else None)
