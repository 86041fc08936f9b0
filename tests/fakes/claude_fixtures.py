"""Pytest fixtures for the fake Claude (filled in with the fake)."""
