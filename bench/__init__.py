"""Benchmarks (run as modules: `python -m bench.poll_bench`)."""
