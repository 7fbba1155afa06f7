"""HTTP layer: thin Chalice blueprints, pydantic schemas, the error mapping and OpenAPI."""
