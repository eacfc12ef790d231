from fastapi.testclient import TestClient

from ledger.app import create_app


def test_health() -> None:
    assert TestClient(create_app()).get("/accounts/health").json() == {"status": "ok"}
