"""What keeps writes landing: the outbox, outage detection, retention, batched journal writes."""
