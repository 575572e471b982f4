"""Quality evaluations that run against a real library (keyword precision, ...)."""
