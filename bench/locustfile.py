"""The mixed workload's users, for Locust (headless, run by bench.mixed_load).

Each simulated user comes from its own loopback address (127.<subnet>.x.y, the client
socket bound to it), so the gateway's and auth's per-address limits see one client each,
as real users would be seen. A user registers and logs in, honouring ``Retry-After`` on a
refusal (503 or 429) until it gets in, then lists, creates, reads and completes tasks (with
``If-Match``), reads its summary and refreshes its token, thinking 0.5-2 s between requests.

Every answer is written as one sample (``BENCH_LOCUST_SAMPLES``, JSON lines, when Locust
quits): the route, when it was sent, its time, its status, and whether it carried
``Retry-After``; a user's time from its first register to its login is the ``entered``
sample. bench.mixed_stats reads them.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any, cast

from locust import HttpUser, SequentialTaskSet, between, events, task
from locust.exception import StopUser
from requests import Response
from requests.adapters import HTTPAdapter

SAMPLES: list[dict[str, Any]] = []
SUBNET = int(os.environ.get("BENCH_LOCUST_SUBNET", "10"))
# The longest a user keeps trying to get in before it gives up.
ENTRY_DEADLINE_SECONDS = float(os.environ.get("BENCH_LOCUST_ENTRY_DEADLINE", "120"))
_numbers = itertools.count()


def _address(n: int) -> str:
    """The n-th client address: 127.<subnet>.0.1, 127.<subnet>.0.2, ... (250 a /24)."""
    return f"127.{SUBNET}.{n // 250}.{n % 250 + 1}"


class _SourceAddress(HTTPAdapter):
    """Connections leave from one local address (any loopback address reaches 127.0.0.1)."""

    def __init__(self, address: str) -> None:
        self._source = (address, 0)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


def _record(route: str, began: float, response: Response | None) -> None:
    status = response.status_code if response is not None else 0
    SAMPLES.append(
        {
            "route": route,
            "t": began,
            "ms": round((time.time() - began) * 1000, 2),
            "status": status,
            "retry_after": None if response is None else response.headers.get("Retry-After"),
        }
    )


class Session(SequentialTaskSet):
    """One pass of a signed-in user's work; Locust repeats it, thinking between steps."""

    def on_start(self) -> None:
        self.task_id = ""
        self.etag = ""

    @property
    def member(self) -> Member:
        return cast("Member", self.user)

    def _call(self, route: str, method: str, path: str, **kwargs: Any) -> Response | None:
        return self.member.call(route, method, path, auth=True, **kwargs)

    @task
    def list_tasks(self) -> None:
        self._call("list", "GET", "/api/v1/tasks?limit=20")

    @task
    def create(self) -> None:
        body = {"title": "mixed workload", "priority": "medium", "tags": ["bench"]}
        response = self._call("create", "POST", "/api/v1/tasks", json=body)
        if response is not None and response.status_code == 201:
            self.task_id = response.json()["id"]

    @task
    def get(self) -> None:
        if not self.task_id:
            return
        response = self._call("get", "GET", f"/api/v1/tasks/{self.task_id}")
        if response is not None and response.status_code == 200:
            self.etag = response.headers.get("ETag", "")

    @task
    def complete(self) -> None:
        if not (self.task_id and self.etag):
            return
        self._call(
            "complete",
            "PATCH",
            f"/api/v1/tasks/{self.task_id}",
            json={"status": "done"},
            headers={"If-Match": self.etag},
        )
        self.task_id = self.etag = ""

    @task
    def summary(self) -> None:
        self._call("summary", "GET", "/api/v1/analytics/summary")

    @task
    def refresh(self) -> None:
        self.member.refresh()


class Member(HttpUser):
    wait_time = between(0.5, 2.0)
    # Locust's own class attribute: the task sets a user runs.
    tasks = [Session]  # noqa: RUF012

    def on_start(self) -> None:
        self.client.mount("http://", _SourceAddress(_address(next(_numbers))))
        self.access = self.refresh_token = ""
        email = f"mixed-{uuid.uuid4().hex[:12]}@example.com"
        password = "mixed-" + uuid.uuid4().hex
        began = time.time()
        credentials = {"email": email, "password": password}
        # 409: a register answered too late (a timeout) that was stored all the same.
        if self._until_in("register", "/api/v1/auth/register", credentials, {201, 409}) is None:
            self._gave_up(began)
        tokens = self._until_in("login", "/api/v1/auth/login", credentials, {200})
        if tokens is None:
            self._gave_up(began)
            return
        self._take(tokens.json())
        SAMPLES.append({"route": "entered", "t": began, "ms": (time.time() - began) * 1000})

    def _gave_up(self, began: float) -> None:
        SAMPLES.append({"route": "never entered", "t": began, "ms": (time.time() - began) * 1000})
        raise StopUser()

    def _until_in(
        self, route: str, path: str, body: dict[str, str], expected: set[int]
    ) -> Response | None:
        """The request again and again, after each refusal's Retry-After (a second after an
        answer without one), until it is served or the entry deadline passes."""
        deadline = time.time() + ENTRY_DEADLINE_SECONDS
        while time.time() < deadline:
            response = self.call(route, "POST", path, json=body)
            if response is not None and response.status_code in expected:
                return response
            wait = 1.0
            if response is not None and response.headers.get("Retry-After", "").isdigit():
                wait = float(response.headers["Retry-After"])
            # A little jitter, as a real client adds, so refused users do not return in step.
            time.sleep(wait + random.uniform(0, 0.25))
        return None

    def _take(self, tokens: dict[str, Any]) -> None:
        self.access = tokens["access_token"]
        self.refresh_token = tokens["refresh_token"]

    def refresh(self) -> None:
        body = {"refresh_token": self.refresh_token}
        response = self.call("refresh", "POST", "/api/v1/auth/refresh", json=body)
        if response is not None and response.status_code == 200:
            self._take(response.json())

    def call(
        self, route: str, method: str, path: str, *, auth: bool = False, **kwargs: Any
    ) -> Response | None:
        if auth:
            kwargs["headers"] = {
                **kwargs.get("headers", {}),
                "Authorization": f"Bearer {self.access}",
            }
        began = time.time()
        try:
            with self.client.request(method, path, name=route, catch_response=True, **kwargs) as r:
                if r.status_code < 400:
                    r.success()
                else:
                    r.failure(f"{r.status_code}")
        except OSError:
            _record(route, began, None)
            return None
        response = cast(Response, r)
        _record(route, began, response)
        return response


def _write_samples(**_kwargs: Any) -> None:
    path = os.environ.get("BENCH_LOCUST_SAMPLES")
    if path:
        with Path(path).open("w") as out:
            for sample in SAMPLES:
                out.write(json.dumps(sample) + "\n")


events.quitting.add_listener(_write_samples)  # type: ignore[no-untyped-call]
