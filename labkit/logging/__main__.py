"""``python -m labkit.logging --home DIR``: Elasticsearch alone."""

from .standalone import main

main()
