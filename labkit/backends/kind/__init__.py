"""The kind backend: a kind cluster plus docker compose, the real products (``backend.KindBackend``).

``lab`` holds one home's cluster name, ports and CLI calls; ``parts`` is what each product's
``<product>/kind.py`` implements; ``python -m labkit.backends.kind render`` writes the lab's files for
running the README's commands by hand.
"""
