"""Promotion: a copilot moves to another model through offline gates, shadow traffic
and canary steps, decided by measurements, then promoted or rolled back with a report
(docs/promotion.md).

Import from the modules (`.controller`, `.live`, `.offline`, ...): this package imports
nothing.
"""
