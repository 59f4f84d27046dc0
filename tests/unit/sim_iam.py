"""What the simulator's IAM tests share: an account, a clock, a client, login and create bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from tests.unit import sim_app

PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
SOURCE = "1a2b3c4d5e6f708192a3b4c5d6e7f809in07"
PATH = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases/replication"
LOGIN = "/v3/auth/tokens"
DOMAIN, USER, PASSWORD = "acme_account", "sync_bot", "Pa55-word!"
T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
IAM = SimulatorConfig(iam_domain=DOMAIN, iam_user=USER, iam_password=PASSWORD)
EXPIRED_BODY = {
    "error_code": "APIGW.0301",
    "error_msg": "Incorrect IAM authentication information: token expired",
}
WRONG_BODY = {
    "error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}
}


class Clock:
    """A settable aware clock."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """The current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time forward."""
        self.now += timedelta(seconds=seconds)


class AppClient(sim_app.AppClient):
    """The simulator app's client (see :mod:`tests.unit.sim_app`), with IAM logins."""

    def login(self, **overrides: str) -> httpx.Response:
        """POST a password login, with some of domain/user/password/project replaced."""
        return self.request("POST", LOGIN, json=login_body(**overrides))

    def token(self) -> str:
        """Log in with the right account and return the issued token."""
        response = self.login()
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    def create(self, token: str, task_name: str = "task_orders_001") -> httpx.Response:
        """Create a task authenticated by ``token``."""
        return self.request(
            "POST", PATH, json=create_body(task_name), headers={"X-Auth-Token": token}
        )

    def list(self, token: str) -> httpx.Response:
        """List the instance's tasks authenticated by ``token``."""
        return self.request("GET", PATH, headers={"X-Auth-Token": token})


def login_body(
    domain: str = DOMAIN, user: str = USER, password: str = PASSWORD, project: str = PROJECT
) -> dict[str, Any]:
    """The documented password login body."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"domain": {"name": domain}, "name": user, "password": password}
                },
            },
            "scope": {"project": {"id": project}},
        }
    }


def create_body(task_name: str) -> dict[str, str]:
    """A valid create body."""
    return {
        "source_instance_id": SOURCE,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": task_name,
    }


def client_for(
    config: SimulatorConfig = IAM, clock: Clock | None = None
) -> tuple[AppClient, SimulatorState, Clock]:
    """An app with a fresh state and a settable clock, and both to inspect."""
    state = SimulatorState()
    clock = clock or Clock()
    return AppClient(make_app(config, state, clock=clock)), state, clock
