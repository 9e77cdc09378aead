"""The lab's image registry: the OCI distribution API, content-addressed storage under the lab home."""
