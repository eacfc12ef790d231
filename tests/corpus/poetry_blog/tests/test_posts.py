from fastapi.testclient import TestClient

from blog.main import app


def test_health() -> None:
    assert TestClient(app).get("/posts/health").json() == {"status": "ok"}
