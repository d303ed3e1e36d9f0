"""Meadow segments service: customer facts, the rule language, lifecycle, RFM, tags and group metrics."""
