from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.priority import Priority
from ...models.problem import Problem
from ...models.sort_order import SortOrder
from ...models.status import Status
from ...models.task_page import TaskPage
from ...types import UNSET, Unset
from typing import cast
import datetime



def _get_kwargs(
    *,
    status: None | Status | Unset = UNSET,
    priority: None | Priority | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: datetime.datetime | None | Unset = UNSET,
    due_after: datetime.datetime | None | Unset = UNSET,
    sort: SortOrder | Unset = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    owner_id: None | str | Unset = UNSET,

) -> dict[str, Any]:
    

    

    params: dict[str, Any] = {}

    json_status: None | str | Unset
    if isinstance(status, Unset):
        json_status = UNSET
    elif isinstance(status, Status):
        json_status = status.value
    else:
        json_status = status
    params["status"] = json_status

    json_priority: None | str | Unset
    if isinstance(priority, Unset):
        json_priority = UNSET
    elif isinstance(priority, Priority):
        json_priority = priority.value
    else:
        json_priority = priority
    params["priority"] = json_priority

    json_tag: None | str | Unset
    if isinstance(tag, Unset):
        json_tag = UNSET
    else:
        json_tag = tag
    params["tag"] = json_tag

    json_q: None | str | Unset
    if isinstance(q, Unset):
        json_q = UNSET
    else:
        json_q = q
    params["q"] = json_q

    json_due_before: None | str | Unset
    if isinstance(due_before, Unset):
        json_due_before = UNSET
    elif isinstance(due_before, datetime.datetime):
        json_due_before = due_before.isoformat()
    else:
        json_due_before = due_before
    params["due_before"] = json_due_before

    json_due_after: None | str | Unset
    if isinstance(due_after, Unset):
        json_due_after = UNSET
    elif isinstance(due_after, datetime.datetime):
        json_due_after = due_after.isoformat()
    else:
        json_due_after = due_after
    params["due_after"] = json_due_after

    json_sort: str | Unset = UNSET
    if not isinstance(sort, Unset):
        json_sort = sort.value

    params["sort"] = json_sort

    params["limit"] = limit

    json_cursor: None | str | Unset
    if isinstance(cursor, Unset):
        json_cursor = UNSET
    else:
        json_cursor = cursor
    params["cursor"] = json_cursor

    json_owner_id: None | str | Unset
    if isinstance(owner_id, Unset):
        json_owner_id = UNSET
    else:
        json_owner_id = owner_id
    params["owner_id"] = json_owner_id


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/tasks",
        "params": params,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | TaskPage | None:
    if response.status_code == 200:
        response_200 = TaskPage.from_dict(response.json())



        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())



        return response_403

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())



        return response_413

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())



        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())



        return response_429

    if response.status_code == 431:
        response_431 = Problem.from_dict(response.json())



        return response_431

    if response.status_code == 502:
        response_502 = Problem.from_dict(response.json())



        return response_502

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())



        return response_503

    if response.status_code == 504:
        response_504 = Problem.from_dict(response.json())



        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | TaskPage]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    status: None | Status | Unset = UNSET,
    priority: None | Priority | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: datetime.datetime | None | Unset = UNSET,
    due_after: datetime.datetime | None | Unset = UNSET,
    sort: SortOrder | Unset = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    owner_id: None | str | Unset = UNSET,

) -> Response[Problem | TaskPage]:
    """ List Tasks

    Args:
        status (None | Status | Unset):
        priority (None | Priority | Unset):
        tag (None | str | Unset):
        q (None | str | Unset):
        due_before (datetime.datetime | None | Unset):
        due_after (datetime.datetime | None | Unset):
        sort (SortOrder | Unset):
        limit (int | Unset):  Default: 20.
        cursor (None | str | Unset):
        owner_id (None | str | Unset): admins only: list another user's tasks

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TaskPage]
     """


    kwargs = _get_kwargs(
        status=status,
priority=priority,
tag=tag,
q=q,
due_before=due_before,
due_after=due_after,
sort=sort,
limit=limit,
cursor=cursor,
owner_id=owner_id,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient,
    status: None | Status | Unset = UNSET,
    priority: None | Priority | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: datetime.datetime | None | Unset = UNSET,
    due_after: datetime.datetime | None | Unset = UNSET,
    sort: SortOrder | Unset = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    owner_id: None | str | Unset = UNSET,

) -> Problem | TaskPage | None:
    """ List Tasks

    Args:
        status (None | Status | Unset):
        priority (None | Priority | Unset):
        tag (None | str | Unset):
        q (None | str | Unset):
        due_before (datetime.datetime | None | Unset):
        due_after (datetime.datetime | None | Unset):
        sort (SortOrder | Unset):
        limit (int | Unset):  Default: 20.
        cursor (None | str | Unset):
        owner_id (None | str | Unset): admins only: list another user's tasks

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TaskPage
     """


    return sync_detailed(
        client=client,
status=status,
priority=priority,
tag=tag,
q=q,
due_before=due_before,
due_after=due_after,
sort=sort,
limit=limit,
cursor=cursor,
owner_id=owner_id,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    status: None | Status | Unset = UNSET,
    priority: None | Priority | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: datetime.datetime | None | Unset = UNSET,
    due_after: datetime.datetime | None | Unset = UNSET,
    sort: SortOrder | Unset = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    owner_id: None | str | Unset = UNSET,

) -> Response[Problem | TaskPage]:
    """ List Tasks

    Args:
        status (None | Status | Unset):
        priority (None | Priority | Unset):
        tag (None | str | Unset):
        q (None | str | Unset):
        due_before (datetime.datetime | None | Unset):
        due_after (datetime.datetime | None | Unset):
        sort (SortOrder | Unset):
        limit (int | Unset):  Default: 20.
        cursor (None | str | Unset):
        owner_id (None | str | Unset): admins only: list another user's tasks

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TaskPage]
     """


    kwargs = _get_kwargs(
        status=status,
priority=priority,
tag=tag,
q=q,
due_before=due_before,
due_after=due_after,
sort=sort,
limit=limit,
cursor=cursor,
owner_id=owner_id,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient,
    status: None | Status | Unset = UNSET,
    priority: None | Priority | Unset = UNSET,
    tag: None | str | Unset = UNSET,
    q: None | str | Unset = UNSET,
    due_before: datetime.datetime | None | Unset = UNSET,
    due_after: datetime.datetime | None | Unset = UNSET,
    sort: SortOrder | Unset = UNSET,
    limit: int | Unset = 20,
    cursor: None | str | Unset = UNSET,
    owner_id: None | str | Unset = UNSET,

) -> Problem | TaskPage | None:
    """ List Tasks

    Args:
        status (None | Status | Unset):
        priority (None | Priority | Unset):
        tag (None | str | Unset):
        q (None | str | Unset):
        due_before (datetime.datetime | None | Unset):
        due_after (datetime.datetime | None | Unset):
        sort (SortOrder | Unset):
        limit (int | Unset):  Default: 20.
        cursor (None | str | Unset):
        owner_id (None | str | Unset): admins only: list another user's tasks

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TaskPage
     """


    return (await asyncio_detailed(
        client=client,
status=status,
priority=priority,
tag=tag,
q=q,
due_before=due_before,
due_after=due_after,
sort=sort,
limit=limit,
cursor=cursor,
owner_id=owner_id,

    )).parsed
