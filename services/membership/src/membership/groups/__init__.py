"""Groups: endpoints, service, repository and schemas."""
