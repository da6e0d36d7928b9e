"""A realistic service measured with and without tocsin (see :mod:`.app`).

``python -m benchmarks.service`` serves it; :mod:`.load` starts it in a
subprocess and drives a bounded load at it; ``benchmarks/bench_service.py``
measures it; ``tests/test_service_soak.py`` checks its counts under load.
"""
