"""Merchant-defined segments: CRUD, preview, full recompute and members."""
