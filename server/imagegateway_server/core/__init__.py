"""The gateway core: serves one generation request from admission to the log record.

Both front ends (``api/``) call ``core.gateway.Gateway``; the core runs routing (``routing/``), the
key limits and budgets (``core/limits.py``), pricing (``core/pricing.py``), and hands the finished
request to the recorder (``observability/``), which only logs and counts.
"""
