"""Benchmark scripts: each prints a markdown table (run as ``python -m benchmarks.NAME``)."""
