from fastapi.testclient import TestClient

from shop.main import app


def test_health_answers_ok() -> None:
    # Outside a `with` block the client skips the lifespan, so no database is needed.
    response = TestClient(app).get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
