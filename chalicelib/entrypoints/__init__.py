"""The entry layer: Lambda event envelopes in, domain values to the services, Lambda's answers out.

``app.py`` registers the handlers; these modules translate (cosmicpython's ``entrypoints``).
"""
