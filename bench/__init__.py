"""Benchmarks of the loyalty API: request units per operation, handler overhead, cold start.

Run with ``python -m bench.run`` (``make bench``). Everything runs against a DynamoDB Local
started by the bench itself; nothing is written into the repository.
"""
