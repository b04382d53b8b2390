"""Benchmarks: ``python -m benchmarks`` runs every ``benchmarks/bench_*.py`` module.

Each module defines ``run() -> list[dict]`` returning rows ``{name, metric, value, unit}``.
Rows are printed as a table and written together to ``out/bench.json``.
"""
