"""Projections: endpoints, service, repository and schemas."""
