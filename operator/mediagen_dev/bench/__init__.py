"""Benchmarks of the operator against the real parts: ``python -m mediagen_dev.bench [--scale smoke|full]``.

Each measurement is a module of its own (:mod:`.writes`, :mod:`.rate`, :mod:`.overhead`, :mod:`.throughput`,
:mod:`.inflight`, :mod:`.large`, :mod:`.floor`, :mod:`.webhooks`); :mod:`.runner` runs them against one
:class:`~mediagen_dev.bench.bench_stack.Stack` (a local kube-apiserver with an audit log, moto's S3 server in a child
process, the fake Replicate over loopback HTTP, and the operator as its own process), prints a table
(:mod:`.table`) and writes ``bench/results.json`` (:mod:`.results`).
"""
