"""Shared dependencies: the session and the caller's identity."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from labflow.auth import token_for
from labflow.db import get_session
from labflow.models import ApiToken

SessionDep = Annotated[Session, Depends(get_session)]
# FastAPI answers 400 (not 422) when a request body cannot be decoded at all.
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"description": "Request body could not be parsed"}
}
_bearer = HTTPBearer(auto_error=False, description="labflow token: `labflow token create`")


def current_token(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "bearer token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = token_for(session, credentials.credentials)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


TokenDep = Annotated[ApiToken, Depends(current_token)]


def require(*roles: str) -> Callable[[ApiToken], ApiToken]:
    allowed = set(roles) | {"admin"}

    def check(token: TokenDep) -> ApiToken:
        if token.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {token.role!r} may not do this")
        return token

    return check


def actor(token: ApiToken) -> str:
    return f"user:{token.name}({token.role})"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


async def reject_nul(request: Request) -> None:
    """422 for NUL characters in path, query or JSON body: PostgreSQL text cannot hold them.

    Without this, e.g. `?accession=%00` reaches the database and fails there with a 500.
    The JSON body is checked only on routes with a body model (FastAPI has read it already),
    so the streamed, size-capped inbound webhook body is left alone.
    """
    params = [("path", k, v) for k, v in request.path_params.items()]
    params += [("query", k, v) for k, v in request.query_params.multi_items()]
    bad = [(where, k) for where, k, v in params if "\x00" in str(v)]
    has_body = getattr(request.scope.get("route"), "body_field", None) is not None
    body = await request.body() if has_body else b""
    if b"\\u0000" in body:
        try:
            if any("\x00" in s for s in _strings(json.loads(body))):
                bad.append(("body", "string"))
        except ValueError:
            pass  # not JSON: FastAPI reports that itself
    if bad:
        raise RequestValidationError(
            [
                {"type": "value_error", "loc": [where, name], "msg": "NUL character", "input": None}
                for where, name in bad
            ]
        )


NoNul = Depends(reject_nul)
