"""Gateway mode: raw models and routes (fallback chains), the pass-through fast
path, failover and the routes file."""
