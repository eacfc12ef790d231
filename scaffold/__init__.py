"""scaffold: generate PostgreSQL-backed Server-Sent Events channels into FastAPI projects."""

__version__ = "0.10.0"
"""Released together with the runtime, fastapi-pg-sse, which has the same version."""
