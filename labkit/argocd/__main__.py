"""``python -m labkit.argocd --home DIR --kubeconfig FILE``: Argo CD alone."""

from .standalone import main

main()
