"""The benchmarks behind ``make bench`` (``python -m bench``): developer-side, never deployed.

Every figure is a median over several runs, compared with a baseline measured in the same run,
because absolute timings on a shared machine say little. Bars are reported, not enforced: the
harness exits 0 when a bar does not hold and non-zero only when it breaks itself. The figures are
added through ``bench.registry``; ``docs/benchmarks.md`` explains each one.
"""
