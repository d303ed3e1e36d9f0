"""HTTP ingest for order systems and storefronts that cannot produce to Kafka."""
