"""Health, readiness and Prometheus metrics (Discord-free)."""
