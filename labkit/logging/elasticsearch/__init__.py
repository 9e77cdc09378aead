"""Elasticsearch's REST API as ``elasticsearch-py`` and Kibana use it, over SQLite (see ``store``)."""
