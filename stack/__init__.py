"""Local services on loopback: Kafka (KRaft, from Maven jars), MLflow, Prefect, the Open Images mirror."""
