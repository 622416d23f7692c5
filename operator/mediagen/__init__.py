"""mediagen: AI media generation as a Kubernetes resource."""
