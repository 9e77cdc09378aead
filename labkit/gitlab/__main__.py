"""``python -m labkit.gitlab --home DIR``: the GitLab simulator alone."""

from .standalone import main

main()
