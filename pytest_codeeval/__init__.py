"""pytest-codeeval: code-generation model evaluation as pytest."""

# The one place the version is written: pyproject.toml reads it ([tool.setuptools.dynamic]), and
# the results file's environment and ``codeeval --version`` print it.
#
# Nothing is imported here: the sandbox's fork server imports this package under ``python -I``
# and must stay as bare as its own modules make it. Debug detail goes to the "pytest_codeeval"
# logger's children (logging.getLogger(__name__) in each module), shown by pytest's
# --log-level=DEBUG or log_cli; the package logs nothing at the default levels.
__version__ = "0.1.0"
