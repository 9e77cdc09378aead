"""Exporters the sim's Prometheus scrapes beside the pods: kube-state-metrics-style series from the API server."""
