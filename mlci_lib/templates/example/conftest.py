"""Puts the example's folder on sys.path for its tests (pytest imports a root conftest first)."""
