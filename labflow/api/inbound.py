"""`POST /api/v1/inbound/{interface}`: signed messages from the LIS (contract section 2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from labflow import metrics, signing
from labflow.api.deps import NoNul, SessionDep, TokenDep
from labflow.db import session_scope
from labflow.interop.hl7_ack import AckCode, build_ack
from labflow.interop.model import LabflowEvent
from labflow.models import InboundMessage
from labflow.services.inbox import Receipt, receive
from labflow.services.mapping import HL7, media_type
from labflow.settings import get_settings

router = APIRouter(prefix="/api/v1/inbound", tags=["inbound"], dependencies=[NoNul])
READ_CAP_FACTOR = 10  # beyond 10x the body limit we stop reading: nothing to keep


class Accepted(BaseModel):
    message_id: str
    status: str
    errors: list[str] = []


class Problem(BaseModel):
    detail: str


class MessageStatus(BaseModel):
    message_id: str
    status: str
    errors: list[str]


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": LabflowEvent.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
            },
            "application/fhir+json": {"schema": {"type": "object"}},
            "application/hl7-v2": {"schema": {"type": "string"}},
        },
    },
    "parameters": [
        {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
        for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
    ],
}


@router.post(
    "/{interface}",
    status_code=202,
    response_model=Accepted,
    openapi_extra=_BODY_DOC,
    responses={
        200: {"model": Accepted, "description": "Same webhook-id and body seen before"},
        401: {"model": Problem, "description": "Missing or bad signature, or stale timestamp"},
        409: {"model": Accepted, "description": "webhook-id reused with another body"},
        413: {"model": Accepted, "description": "Body too large (kept, parked)"},
        415: {"model": Accepted, "description": "Unsupported content type (kept, parked)"},
    },
)
async def post_inbound(interface: str, request: Request) -> Response:
    """Store the raw body (committed before we answer), then process it on the queue.

    Unparseable or unmappable bodies are parked with their errors and answered 202 (HL7 v2:
    ACK AE); they stay visible in the message store for review and reprocessing.
    """
    settings = get_settings()
    secret = settings.inbound_secrets.get(interface)
    body = await _read_capped(request, settings.max_body_bytes * READ_CAP_FACTOR)
    if secret is None:
        raise HTTPException(401, f"no signing secret configured for interface {interface!r}")
    try:
        webhook_id = signing.verify(secret, body, request.headers)
    except signing.SignatureError as exc:
        raise HTTPException(401, f"signature rejected: {exc}") from exc
    content_type = request.headers.get("content-type", "")

    def store() -> Receipt:
        with session_scope() as session:
            return receive(
                session,
                interface=interface,
                webhook_id=webhook_id,
                content_type=content_type,
                body=body,
                max_body_bytes=settings.max_body_bytes,
            )

    receipt = await run_in_threadpool(store)
    metrics.MESSAGES_RECEIVED.labels(interface, receipt.status).inc()
    if media_type(content_type) == HL7 and receipt.http_status in (200, 202):
        code: AckCode = "AA" if receipt.status in ("accepted", "duplicate") else "AE"
        return Response(
            build_ack(receipt.hl7, code, receipt.errors),
            status_code=receipt.http_status,
            media_type="application/hl7-v2",
            headers={
                "x-labflow-message-id": receipt.message_id,
                "x-labflow-status": receipt.status,
            },
        )
    return JSONResponse(
        Accepted(
            message_id=receipt.message_id, status=receipt.status, errors=receipt.errors
        ).model_dump(),
        status_code=receipt.http_status,
    )


async def _read_capped(request: Request, cap: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise HTTPException(413, f"body exceeds {cap} bytes; not stored")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get(
    "/{message_id}",
    response_model=MessageStatus,
    responses={404: {"model": Problem}, 401: {"model": Problem}},
)
def get_inbound(message_id: str, session: SessionDep, _token: TokenDep) -> MessageStatus:
    message = session.get(InboundMessage, message_id)
    if message is None:
        raise HTTPException(404, "no such message")
    return MessageStatus(message_id=message.id, status=message.status, errors=message.errors)
