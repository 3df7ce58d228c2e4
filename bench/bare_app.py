"""The R1 denominator: a bare FastAPI inbound route with no verification and no storage.

`POST /api/v1/inbound/{interface}` reads the body exactly as labflow does (streamed, capped)
and answers 202 JSON. Served by uvicorn with the same settings as `labflow serve` (one process,
uvicorn's default loop and HTTP parser, log level warning).

    python bench/bare_app.py --port 8001
"""

from __future__ import annotations

import argparse
import uuid

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

CAP = 10_000_000  # the same 10x-the-limit read cap as labflow's inbound route

app = FastAPI(title="bare inbound")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/inbound/{interface}", status_code=202)
async def post_inbound(interface: str, request: Request) -> JSONResponse:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > CAP:
            raise HTTPException(413, "body too large")
        chunks.append(chunk)
    b"".join(chunks)
    return JSONResponse(
        {"message_id": uuid.uuid4().hex, "status": "accepted", "errors": []}, status_code=202
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
