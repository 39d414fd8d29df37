"""Benchmarks: run with `make bench`. They print numbers; nothing is asserted."""
