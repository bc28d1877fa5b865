"""Benchmarks: scripts run by hand (`python benchmarks/throughput.py --help`)."""
