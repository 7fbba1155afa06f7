"""Adapters to the world outside our tables: outgoing HTTP (webhooks), KMS, SQS."""
