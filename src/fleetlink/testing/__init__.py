"""Helpers for tests and benchmarks: isolated topics, share groups and client ids."""
