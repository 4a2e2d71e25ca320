"""pytest-codeeval: code-generation model evaluation as pytest."""
__version__ = "0.1.0"
