"""The benchmark test modules, one folder per benchmark.

In a clone, ``pytest benchmarks/humaneval`` collects them from here. The wheel ships this folder
as the package ``pytest_codeeval.suites`` (pyproject's ``package-dir``), so that
``pytest --codeeval-benchmark=humaneval`` collects the very same modules from an install.
Nothing here is imported as a package by pytest: each folder has no ``__init__.py``.
"""
