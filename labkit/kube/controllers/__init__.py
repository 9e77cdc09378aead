"""The controllers that make objects come alive, as kube-controller-manager and kube-scheduler do.

They run in the API server's process and event loop and act through the same
object layer (admission, validation, resourceVersions) as any client.
"""
