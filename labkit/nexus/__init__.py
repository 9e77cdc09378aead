"""Nexus Repository (chapter 04): PyPI and Maven proxy, hosted and group repositories with Nexus' REST API."""
