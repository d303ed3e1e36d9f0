"""Read models: the customer 360 view and per-group daily metrics."""
