"""The benchmark suite: asimap in its real configuration against Dovecot.

``python -m bench.suite`` runs every workload (or those named) against
each server in turn - asimap as root with workers, the MH store and
implicit TLS; the same as an ordinary user where that is cheap; a private
Dovecot with Maildir and TLS - back to back, and rewrites the results in
``docs/benchmarks.md``.  ``--help`` lists the options.
"""
