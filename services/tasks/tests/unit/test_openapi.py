"""The API description the gateway merges: every operation, with its documented answers."""

from __future__ import annotations

from taskmesh_common.testing.tokens import TokenFactory
from tasks_service.api.app import create_app
from tasks_service.config import Settings


def test_openapi_lists_every_tasks_operation() -> None:
    app = create_app(Settings(env="test"), verifier=TokenFactory().verifier())
    paths = app.openapi()["paths"]
    assert set(paths["/api/v1/tasks"]) == {"get", "post"}
    assert set(paths["/api/v1/tasks/{task_id}"]) == {"get", "patch", "delete"}
    list_params = {p["name"] for p in paths["/api/v1/tasks"]["get"]["parameters"]}
    assert {"status", "priority", "tag", "q", "due_before", "due_after", "sort", "limit"} <= (
        list_params
    )
    assert "412" in paths["/api/v1/tasks/{task_id}"]["patch"]["responses"]
