"""Sample raw exports for the demo, the tests and the benchmarks: not a pipeline step."""
