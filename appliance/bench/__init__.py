"""Benchmarks run by ``nameplate bench`` (results go to docs/benchmarks.md by hand)."""
