"""harmscan's pure core: labels, Open Images logic, presets, models, training engine, metrics.

Nothing in this package imports Prefect, Kafka, MLflow or boto3; those live in `tasks/`, `flows/`,
`serving/` and `stack/`, which wrap the core.
"""

__version__ = "0.1.0"
