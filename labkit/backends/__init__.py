"""Backends decide how the lab's products are started and where they listen (``base.Backend``).

``sim`` runs local emulators under a lab daemon; ``kind`` drives the real products in Docker.
``labkit.control`` picks one; this package stays import-light (product modules import
``backends.kind.parts``).
"""
