"""Benchmarks, load generators and tuning scripts: tools run from a checkout (`make bench`), never shipped."""
