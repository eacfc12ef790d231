"""scaffold: generate PostgreSQL-backed Server-Sent Events channels into FastAPI projects."""
