"""The project's benchmark: ``python -m studio.bench [--quick] --json OUT.json``.

Each area has a module with ``bench(quick: bool) -> dict`` whose result is
stored under that area's key in the JSON.
"""
