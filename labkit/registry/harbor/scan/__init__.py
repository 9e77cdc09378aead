"""Harbor's scanning on the lab registry: Trivy vulnerability reports and Syft SBOM accessories,
run in the background."""
