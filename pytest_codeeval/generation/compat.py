"""The transformers versions the local decoding loop supports, checked without importing it.

The loop (:mod:`pytest_codeeval.generation.decoding`) relies on transformers internals that move
between releases: ``cache_utils.DynamicLayer`` (subclassed to grow the cache in place) and the
``cache=`` keyword of a model's forward. The range below is the one CI installs and tests;
outside it a local model is refused with one line, never decoded silently wrong.
"""

from __future__ import annotations

import importlib.metadata

from packaging.version import InvalidVersion, Version

LOWEST, BELOW = Version("5.24"), Version("6")  # keep in step with pyproject.toml's hf extra
REQUIREMENT = f"transformers>={LOWEST},<{BELOW}"


def transformers_problem(installed: str | None = None) -> str | None:
    """Why the installed transformers cannot run the local loop, or None (also when it is not
    installed at all: the missing extra is said where the model is loaded)."""
    if installed is None:
        try:
            installed = importlib.metadata.version("transformers")
        except importlib.metadata.PackageNotFoundError:
            return None
    try:
        version = Version(installed)
    except InvalidVersion:
        return f"transformers {installed!r}: not a version this project can check; install {REQUIREMENT!r}"
    if LOWEST <= Version(version.base_version) < BELOW:  # a 6.0 pre-release is 6.0 here
        return None
    return (f"transformers {installed} is not supported by the local decoding loop (tested: {REQUIREMENT}); "
            f"pip install {REQUIREMENT!r}, or serve the model and pass its URL")
