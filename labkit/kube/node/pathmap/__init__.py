"""The folder the sim kubelet puts first on a container's PYTHONPATH: its ``sitecustomize`` maps the container's
mount paths (``/var/run/secrets/kubernetes.io/serviceaccount``, a ConfigMap at ``/etc/config``) below the
container's root filesystem for the Python process (see ``sitecustomize``)."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
