"""``python -m labkit.registry --home DIR``: the registry alone."""

from .standalone import main

main()
