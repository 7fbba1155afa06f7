"""Scheduled (EventBridge) and queue (SQS) handlers. They reuse the domain services."""
