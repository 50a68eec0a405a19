"""The streaming side: message schema, model source, batching classifier, consumer, producer."""
