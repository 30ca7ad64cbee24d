"""Operator scripts (developer-side, never deployed)."""
