"""Benchmarks that print figures (medians and ratios against a baseline measured in the same run).

Run: ``python -m tests.benchmarks [NAME ...] [--quick] [--json]``. Never part of the test suite.
"""
