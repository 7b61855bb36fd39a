"""The pipeline layer: eval runs (suites, metrics, judges, statistics, stored results),
comparisons and reports, gates, capture and replay. See docs/evals.md.

Import from the modules (`pilothouse.pipeline.runner`, `.store`, `.compare`, ...): this
package imports nothing, so that `pilothouse plugins` can list the metrics cheaply.
"""
