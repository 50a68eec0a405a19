"""Prefect flows that only orchestrate: etl, train, retrain, serve."""
