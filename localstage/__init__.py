"""The local stage: the whole system on one machine (developer-side, never deployed)."""
