"""The sim's image builder: Dockerfiles to real OCI images without Docker (see ``builder`` for the subset).

``build(context, dockerfile, tag=...)`` gives an OCI image layout; ``push`` sends it to a registry;
``unpack`` applies an image's layers to a folder; ``shop.publish_shop`` builds and pushes the demo shop.
"""

from .builder import (
           LABEL_ROOTFS_ENV,
           LABEL_RUNTIME,
           RUNTIME_CONTRACT,
           BuildError,
           BuildEvent,
           BuildResult,
           Layer,
           build,
           push,
           unpack,
)

__all__ = ["LABEL_ROOTFS_ENV", "LABEL_RUNTIME", "RUNTIME_CONTRACT", "BuildError", "BuildEvent", "BuildResult",
           "Layer", "build", "push", "unpack"]
