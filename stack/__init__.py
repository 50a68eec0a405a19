"""Local services on loopback: Kafka (KRaft), MLflow, Prefect, the Open Images mirror."""
