"""Elasticsearch's REST API as ``elasticsearch-py`` and Kibana use it (``api``), over ``store``: every write committed
to SQLite (WAL) before it is answered, so indices survive a SIGKILL, and the searchable documents in memory, where
the query DSL (``query``, ``lucene``) and the aggregations (``aggs``) are evaluated per document.

The engine was chosen by the tests: SQLite is what every labkit emulator already trusts for crash safety, and the
Python evaluator gives Elasticsearch's exact semantics (analysis, date math, bucket keys, error texts) for the
chapter's scale (a lab's logs: tens of thousands of lines). It does not meet the 1,000,000-line aggregation goal;
``benchmarks/logging.py search`` measures it.
"""
