"""Reliability and security experiments (``make chaos``): what the operator and the gateway survive, measured.

Each scenario is a small module with one ``run(stack, scale)`` function returning what it measured:

* :mod:`.kills` — SIGKILL and restart the operator at random moments under a load of generations;
* :mod:`.controlplane` — restart kube-apiserver and etcd under the running operator;
* :mod:`.outages` — S3 down, Replicate failing with 5xx, Replicate throttling with 429;
* :mod:`.failover` — two peered replicas, the active one SIGKILLed, the takeover timed;
* :mod:`.fuzz` — generated MediaGeneration manifests against the real API server and a mock-mode operator,
  and the gateway fuzzed from its OpenAPI;
* :mod:`.secrets` — a full run with known secret values, then every status, event, log line, metric and gateway
  answer searched for them;
* :mod:`.abuse` — the gateway's per-token rate limit and per-tenant in-flight quota.

Everything runs on loopback (:class:`~mediagen_dev.chaos.chaos_stack.Stack`: a local control plane, moto's S3 behind a
fault proxy, the fake Replicate), every fault is bounded in count and time, and every scenario stops by itself.
:mod:`.runner` runs them at a ``small`` scale (what the test suite runs) or the ``full`` one and writes
``bench/reliability.json`` (:mod:`.results`).
"""
