"""Idempotency-Key handling: a retried write returns the first result and writes nothing twice."""
