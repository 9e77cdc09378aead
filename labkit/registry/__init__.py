"""The lab's image registry: the OCI distribution API with a token service, content-addressed storage under
the lab home (``component.Registry``), and a small client (``client.RegistryClient``)."""
