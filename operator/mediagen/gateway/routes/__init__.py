"""The gateway's routes, one module per concern: generations (the JSON API), health, gallery (HTML)."""
