"""Pytest fixtures for the fake GitHub (filled in with the fake)."""
