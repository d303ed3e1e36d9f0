"""Members: endpoints, service, repository and schemas."""
