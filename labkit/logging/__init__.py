"""Chapter 08: logging (Fluent Bit, Elasticsearch, Kibana-style views)."""
