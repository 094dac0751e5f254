"""One module per resource family; each resource is a few lines over the service."""
