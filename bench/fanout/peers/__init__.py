"""The peers: what their users would write for the same job, each served by uvicorn.

Every peer follows the benchmark's server protocol: PORT, DATABASE_URL, JWT_SECRET and
PEER_CHANNEL from the environment; GET /health once it LISTENs; GET /events with a bearer JWT.
"""
