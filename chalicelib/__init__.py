"""Loyalty platform: a multi-tenant points API on Chalice, Lambda and DynamoDB."""
