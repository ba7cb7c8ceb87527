"""Side-by-side measurements of dfgraph (run as modules: python -m benchmarks.overhead)."""
