"""Reproducible benchmarks (run as scripts: ``python bench/peers.py``); see bench/README.md."""
