"""Implementations of the domain ports: AWS adapters and in-memory ones."""
