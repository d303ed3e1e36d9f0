"""Meadow segments service: Customer facts, the segment rule language, lifecycle, RFM, tags and group metrics."""
