"""ecommerce-backend: everything under this package is deployed to AWS Lambda.

Layers (see docs/architecture.md): ``domain`` (pure Python, no I/O), ``services``
(use cases over ports), ``adapters`` (AWS and in-memory implementations of the
ports), ``api`` (HTTP translation), wired once per container by ``bootstrap``.
"""
