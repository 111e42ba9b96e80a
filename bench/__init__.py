"""Benchmarks that print ratios: `make bench` runs `bench/run.py`. See bench/README.md."""
