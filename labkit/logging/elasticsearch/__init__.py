"""Elasticsearch's REST API as ``elasticsearch-py`` and Kibana use it (``api``), over ``store``: every write committed
to SQLite (WAL) before it is answered, so indices survive a SIGKILL, and the refreshed documents in memory, where the
query DSL (``query``, ``lucene``) is evaluated per document and aggregations read numpy doc values (``docvalues``).

The engine was chosen by the tests: SQLite is what every labkit emulator already trusts for crash safety, and the
Python evaluator gives Elasticsearch's semantics (analysis, date math, bucket keys, error texts) directly.
``benchmarks/log_pipeline.py search`` measures the goals: over 1,000,000 lines a date_histogram + terms takes ~0.6 s
(the first after a rewrite ~6 s, building the columns), but the documents held in memory take ~1.5 GB, not 300 MB.
"""
