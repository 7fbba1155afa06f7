"""DynamoDB persistence: PynamoDB models, the per-tenant model factory and the repositories.

AWS and PynamoDB errors are translated into domain errors here and nowhere else.
"""
