"""voicewire benchmarks: client-side TTFA, gaps, RTF and concurrency, side by side with baselines.

One command per scenario (`python -m benchmarks.ttfa`, `python -m benchmarks.concurrency`); see
docs/benchmarks.md for the definitions and the latest results.
"""
