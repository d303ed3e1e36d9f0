"""Blacklist: endpoints, service, repository and schemas."""
