"""``python -m labkit.nexus --home DIR``: Nexus alone."""

from .standalone import main

main()
