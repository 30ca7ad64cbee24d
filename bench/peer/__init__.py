"""The peer the benchmarks compare our observability with: the same routes on Powertools for AWS Lambda."""
