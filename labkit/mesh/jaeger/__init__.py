"""Jaeger on the sim (chapter 09), as Jaeger v2 (all-in-one) serves it:

* ``receiver`` + ``otlp``: the OTLP/HTTP receiver (``POST /v1/traces`` on 4318, protobuf or JSON, gzip), the
  Collector's answers and errors;
* ``store``: spans in SQLite on disk (acknowledged only once committed), with a retention;
* ``v1`` + ``uimodel`` + ``params`` + ``query`` + ``adjust``: the UI's ``/api`` on 16686 (services, operations,
  search, a trace, dependencies) in Jaeger's UI model, with its parameter parsing, error shapes and adjusters;
* ``v3``: ``/api/v3`` in OTLP-JSON;
* ``server`` / ``component`` / ``standalone``: both listeners over one store, in a lab or alone
  (``python -m labkit.mesh.jaeger --home DIR``);
* ``client`` and ``views``: reading traces back (either backend) and the waterfall plot.
"""
