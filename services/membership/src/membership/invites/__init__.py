"""Invites: endpoints, service, repository and schemas."""
