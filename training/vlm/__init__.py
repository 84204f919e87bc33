"""Vision-language models for the ``vlm`` reader: tiny random ones for tests, and random
models of a real model's shape (from its config) for GPU benchmarks. Never downloads."""
