"""Benchmarks: figures printed beside a peer or a raw ceiling measured in the same run."""
