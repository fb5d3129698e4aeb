"""The Python peer of `npm run bench:weave`: POST /calls/score done the way Weave's trace server
does it (FastAPI, pydantic v2, HTTP Basic, librdkafka through confluent-kafka), written here from
its public behaviour so that the worker can be measured against it on the same broker.

One process (uvicorn, one worker). Environment:
  PEER_MODE           "fire-and-forget": Weave's own path, produce each 100-id chunk, flush(0) and
                      answer {} before any acknowledgement; "acknowledged": the same, and the
                      answer waits for every chunk's delivery report (503 when one fails).
  PEER_BROKERS        bootstrap servers, host:port[,host:port]
  PEER_TOPIC          topic to produce to
  PEER_API_KEYS_FILE  {"<sha256 hex of an API key>": {"wb_user_id": ..., "projects": [...]}}, the
                      worker's API_KEYS_FILE format, read once at start.

The one departure from Weave's messages: each carries the worker's `weave-job-id: <uuid>:<chunk>`
header, so that the bench can tell a job missing from a job landed twice for every server alike.
"""

import asyncio
import hashlib
import json
import os
import socket
import threading
import uuid
from typing import Optional

from confluent_kafka import KafkaError, Producer
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict

MODE = os.environ["PEER_MODE"]
if MODE not in ("fire-and-forget", "acknowledged"):
    raise SystemExit(f"PEER_MODE must be fire-and-forget or acknowledged, not {MODE!r}")
TOPIC = os.environ["PEER_TOPIC"]
with open(os.environ["PEER_API_KEYS_FILE"], encoding="utf-8") as keys_file:
    API_KEYS: dict = json.load(keys_file)

CHUNK_SIZE = 100
# What the answer may wait for the delivery reports: librdkafka's own bound on a message.
MESSAGE_TIMEOUT_MS = 5000 * 2 + 100

# Weave's producer settings; linger.ms and acks stay librdkafka's defaults (5 ms, all).
producer = Producer(
    {
        "bootstrap.servers": os.environ["PEER_BROKERS"],
        "client.id": socket.gethostname(),
        "request.timeout.ms": 5000,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        "retries": 1,
        "retry.backoff.ms": 100,
        "partitioner": "murmur2_random",
    }
)


def serve_delivery_reports() -> None:
    # Delivery reports are handed out by poll(); between requests nobody else calls it.
    while True:
        producer.poll(0.1)


threading.Thread(target=serve_delivery_reports, name="delivery-reports", daemon=True).start()


class CallsScoreReq(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str
    call_ids: list[str]
    scorer_refs: list[str]
    wb_user_id: Optional[str] = None


app = FastAPI()
basic = HTTPBasic(realm="weave")


def authorized_user(project_id: str, credentials: HTTPBasicCredentials) -> str:
    record = API_KEYS.get(hashlib.sha256(credentials.password.encode()).hexdigest())
    if record is None:
        raise HTTPException(
            status_code=401,
            detail="Invalid credentials",
            headers={"WWW-Authenticate": 'Basic realm="weave"'},
        )
    entity = project_id.split("/", 1)[0]
    for granted in record["projects"]:
        if granted == project_id or granted == f"{entity}/*":
            return record["wb_user_id"]
    raise HTTPException(status_code=403, detail="Forbidden")


@app.get("/health")
async def health() -> dict:
    return {}


@app.post("/calls/score")
async def calls_score(
    req: CallsScoreReq, credentials: HTTPBasicCredentials = Depends(basic)
) -> dict:
    req = req.model_copy(update={"wb_user_id": authorized_user(req.project_id, credentials)})
    loop = asyncio.get_running_loop()
    job_id = uuid.uuid4()
    reports: list[asyncio.Future] = []
    try:
        for n, start in enumerate(range(0, len(req.call_ids), CHUNK_SIZE)):
            chunk = req.call_ids[start : start + CHUNK_SIZE]
            on_delivery = None
            if MODE == "acknowledged":
                report = loop.create_future()
                reports.append(report)

                def on_delivery(err: Optional[KafkaError], _msg, report=report) -> None:
                    loop.call_soon_threadsafe(settle, report, err)

            producer.produce(
                TOPIC,
                value=req.model_copy(update={"call_ids": chunk}).model_dump_json(),
                key=req.project_id,
                headers=[("weave-job-id", f"{job_id}:{n}")],
                on_delivery=on_delivery,
            )
    except BufferError:
        raise HTTPException(status_code=503, detail="Kafka producer queue is full")
    producer.flush(0)
    if reports:
        errors = await asyncio.gather(*reports)
        failed = [e for e in errors if e is not None]
        if failed:
            raise HTTPException(status_code=503, detail=f"Kafka did not acknowledge: {failed[0]}")
    return {}


def settle(report: asyncio.Future, err: Optional[KafkaError]) -> None:
    if not report.done():
        report.set_result(err)
