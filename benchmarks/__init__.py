"""Benchmarks for Coalesce: glass-to-glass latency, frame rate, CPU and time to first frame, beside ffmpeg.

Run ``python -m benchmarks`` (see :mod:`benchmarks.run` and ``benchmarks/README.md``).
"""
