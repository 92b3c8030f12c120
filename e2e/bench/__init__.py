"""Benchmarks of the operator against the sandbox API server: `make bench`.

`python -m e2e.bench [--quick] [--out FILE]` runs every scenario, prints a table and writes
JSON; docs/benchmarks.md explains the scenarios and records the figures.
"""
