"""Metric-based monitoring: alarm semantics, the learned detector and its compiled kernels, metric fetch, findings,
alerts.
"""
