"""Benchmarks for asimap: a load generator and side-by-side runs with Dovecot.

Not part of the installed package; run from the repository root, e.g.
``python -m bench.suite`` (see docs/benchmarks.md).
"""
