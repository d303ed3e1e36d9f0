"""Meadow membership service: groups, bounded sub-groups, gated joins, invites, blacklist and staff."""
