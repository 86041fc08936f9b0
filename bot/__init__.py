"""Senior review: a self-hosted GitHub App that reviews pull requests like a senior backend developer."""

__version__ = "0.1.0"
