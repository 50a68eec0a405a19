"""The reviewers' side: a web page on the review topic, a queue with claims, decisions to Kafka."""
