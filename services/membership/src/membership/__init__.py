"""Meadow membership service: Groups, sub-groups of bounded size, gated joins, invites, blacklist and staff."""
