"""Structured logs, embedded-format metrics and tracing: cheap on the hot path, no API calls."""
