"""Plain-Python business rules: no Chalice, boto3 or PynamoDB imports here."""
