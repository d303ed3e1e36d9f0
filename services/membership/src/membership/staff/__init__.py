"""Staff: endpoints, service, repository and schemas."""
