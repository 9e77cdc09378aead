"""The Docker Engine product: the Engine API the ``docker`` SDK speaks (sim), the laptop's Docker (kind)."""
