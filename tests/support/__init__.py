"""Test support: emulator processes and an HTTP helper around chalice.test.Client."""
