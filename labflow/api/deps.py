"""Shared dependencies: the session and the caller's identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from labflow.auth import token_for
from labflow.db import get_session
from labflow.models import ApiToken

SessionDep = Annotated[Session, Depends(get_session)]
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
