"""The shop service."""
