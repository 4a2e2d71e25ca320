"""Repository-level conftest.

The plugin's own tests drive pytest through ``pytester``, enabled with ``-p pytester`` in
pyproject's ``addopts`` rather than ``pytest_plugins`` here: with an editable install, a run of
``pytest --codeeval-benchmark=...`` from another directory collects ``benchmarks/`` through this
repository, and pytest refuses ``pytest_plugins`` in a conftest that is not at its rootdir.
"""
