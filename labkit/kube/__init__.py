"""The Kubernetes API server of the sim backend: real REST semantics over an on-disk store."""
