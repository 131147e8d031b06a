"""The REST API under /api/v1 (bearer tokens), documented by OpenAPI at /openapi.json and /docs."""
