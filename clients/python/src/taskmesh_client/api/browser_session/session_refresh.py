from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.access_token_response import AccessTokenResponse
from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    *,
    taskmesh_refresh: None | str | Unset = UNSET,

) -> dict[str, Any]:
    

    cookies = {}
    if taskmesh_refresh is not UNSET:
        cookies["taskmesh_refresh"] = taskmesh_refresh



    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/auth/session/refresh",
        "cookies": cookies,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> AccessTokenResponse | Problem | None:
    if response.status_code == 200:
        response_200 = AccessTokenResponse.from_dict(response.json())



        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[AccessTokenResponse | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    taskmesh_refresh: None | str | Unset = UNSET,

) -> Response[AccessTokenResponse | Problem]:
    """ A new access token; the refresh cookie is rotated

    Args:
        taskmesh_refresh (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AccessTokenResponse | Problem]
     """


    kwargs = _get_kwargs(
        taskmesh_refresh=taskmesh_refresh,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient | Client,
    taskmesh_refresh: None | str | Unset = UNSET,

) -> AccessTokenResponse | Problem | None:
    """ A new access token; the refresh cookie is rotated

    Args:
        taskmesh_refresh (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AccessTokenResponse | Problem
     """


    return sync_detailed(
        client=client,
taskmesh_refresh=taskmesh_refresh,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    taskmesh_refresh: None | str | Unset = UNSET,

) -> Response[AccessTokenResponse | Problem]:
    """ A new access token; the refresh cookie is rotated

    Args:
        taskmesh_refresh (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AccessTokenResponse | Problem]
     """


    kwargs = _get_kwargs(
        taskmesh_refresh=taskmesh_refresh,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    taskmesh_refresh: None | str | Unset = UNSET,

) -> AccessTokenResponse | Problem | None:
    """ A new access token; the refresh cookie is rotated

    Args:
        taskmesh_refresh (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AccessTokenResponse | Problem
     """


    return (await asyncio_detailed(
        client=client,
taskmesh_refresh=taskmesh_refresh,

    )).parsed
