"""Tooling around the product, never shipped in the image: the local control plane, ``mediagen-dev``'s
commands (``dev``, ``controlplane``), the fake Replicate and other test servers, the benchmarks and the chaos
scenarios. The product package :mod:`mediagen` never imports it (an import-linter contract checks that)."""
