"""Bearer tokens with roles. Only a token's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlmodel import Session, col

from labflow import audit
from labflow.models import ApiToken

ROLES = ("technologist", "supervisor", "auditor", "integration", "admin")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, role: str, name: str, actor: str = "cli") -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    token = "lf_" + secrets.token_urlsafe(32)
    row = ApiToken(name=name, role=role, token_sha256=_digest(token))
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="token.created",
        subject_type="api_token",
        subject_id=row.id,
        after={"name": name, "role": role},
    )
    session.commit()
    return token


def token_for(session: Session, token: str) -> ApiToken | None:
    row = session.scalars(
        select(ApiToken).where(col(ApiToken.token_sha256) == _digest(token))
    ).first()
    return None if row is None or row.revoked else row
