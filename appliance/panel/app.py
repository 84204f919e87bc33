"""The operator panel: latest inspections, fields read vs expected, verdicts, evidence images."""

from __future__ import annotations

import csv
import hmac
import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import cv2
from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from appliance import __version__
from appliance.health import assess_health
from appliance.metrics import FileCollector
from appliance.panel.auth import Guard, require
from appliance.panel.drawing import crop_box, draw_boxes, jpeg
from appliance.panel.login import router as login_router
from appliance.panel.pages import router as pages_router
from appliance.panel.review import router as review_router
from appliance.panel.status_metrics import StatusCollector as _StatusCollector
from appliance.reader.images import ImageError, load_image
from appliance.runtime import read_status
from appliance.schema import load_schema
from appliance.settings import Settings
from appliance.store import Store
from appliance.store.history import HistoryFilter, HistoryQueryError
from appliance.transport import ReshootCommand, ReshootReason, Sender, TriggerCommand
from erp_bridge import ErpFileError, record_from_row

TEMPLATE = Path(__file__).parent / "templates" / "index.html"


def create_app(settings: Settings) -> FastAPI:
    """Build the panel application for ``settings`` (reads the recorder's database)."""
    # /docs is our own page over /openapi.json: Swagger's assets come from a CDN (blank offline)
    app = FastAPI(title="Nameplate appliance", version=__version__, docs_url=None,
                  redoc_url=None)
    db_path = settings.data_dir / "appliance.db"
    guard = Guard(db_path)
    app.state.guard = guard
    app.state.settings = settings
    app.state.db_path = db_path
    app.state.corrections_dir = settings.data_dir / "corrections"
    app.middleware("http")(guard.middleware)
    app.include_router(login_router)
    app.include_router(review_router)
    app.include_router(pages_router)
    run_dir = settings.run_dir or settings.data_dir / "run"
    images_dir = (settings.data_dir / "images").resolve()

    def store() -> Store:
        return Store(db_path, readonly=True)

    def with_store(fn: Any) -> Any:
        if not db_path.exists():
            return None
        s = store()
        try:
            return fn(s)
        finally:
            s.close()

    def command(station: str, message: ReshootCommand | TriggerCommand) -> None:
        """Hand a command to a station's camera daemon; 503 when it does not take it."""
        sender = Sender(settings.endpoint("control", station))
        try:
            ok = sender.send(message, timeout_ms=1000)
        finally:
            sender.close()
        if not ok:
            raise HTTPException(503, f"camera {station} is not taking commands")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        html = TEMPLATE.read_text(encoding="utf-8")
        return html.replace("{{REFRESH_MS}}", str(int(settings.panel.refresh_s * 1000)))

    @app.get("/api/v1/inspections")
    def inspections(query: Filtered) -> dict[str, Any]:
        """Inspections matching every filter, newest first; ``next_cursor`` pages on."""
        page: Page = with_store(lambda s: s.history(query)) or ([], None)
        return {"inspections": [_public(r) for r in page[0]], "next_cursor": page[1]}

    @app.get("/api/v1/inspections.csv")
    def inspections_csv(query: Filtered) -> StreamingResponse:
        """The filtered set as CSV (every page), one row per inspection, a column per field."""
        names = load_schema(settings.schema_file).field_names()

        def rows() -> Iterator[str]:
            yield csv_line(CSV_COLUMNS + [f"{n}_{p}" for n in names for p in CSV_FIELD_PARTS])
            if not db_path.exists():
                return
            page: HistoryFilter | None = replace(query, limit=1000)
            while page is not None:
                # Starlette runs each step of this generator on whichever worker thread is
                # free, and SQLite refuses a connection from another thread: each page opens,
                # reads and closes its own between two yields.
                reader = store()
                try:
                    found, following = reader.history(page)
                finally:
                    reader.close()
                for row in found:
                    yield csv_line([row.get(c) for c in CSV_COLUMNS] + [
                        (row["fields"].get(n) or {}).get(p) for n in names
                        for p in CSV_FIELD_PARTS])
                page = replace(page, cursor=following) if following else None

        return StreamingResponse(rows(), media_type="text/csv", headers={
            "Content-Disposition": 'attachment; filename="inspections.csv"'})

    @app.get("/api/v1/inspections/{inspection_id}")
    def inspection(inspection_id: str) -> dict[str, Any]:
        row = with_store(lambda s: s.inspection(inspection_id))
        if row is None:
            raise HTTPException(404, f"no inspection {inspection_id!r}")
        attempts = with_store(lambda s: s.attempts(inspection_id)) or []
        return dict(_public(row), attempts=[_public(a) for a in attempts])

    @app.get("/api/v1/summary")
    def summary() -> dict[str, Any]:
        run_dir = settings.run_dir
        assert run_dir is not None
        services = {name: read_status(run_dir, name) for name in
                    ["infer", "record", *[f"camera-{s.id}" for s in settings.stations]]}
        return {"counts": with_store(lambda s: s.counts()) or {}, "services": services,
                "version": __version__}

    def order_reshoot(station: str, inspection_id: str, unit_id: str | None,
                      attempt: int) -> None:
        command(station, ReshootCommand(
            station=station, inspection_id=inspection_id, unit_id=unit_id,
            attempt=attempt + 1, reason=ReshootReason.OPERATOR,
            detail="operator asked for a reshoot"))

    app.state.reshoot = order_reshoot

    @app.post("/api/v1/inspections/{inspection_id}/reshoot")
    def reshoot(request: Request, inspection_id: str) -> dict[str, Any]:
        require(request, "operator")
        row = with_store(lambda s: s.inspection(inspection_id))
        if row is None:
            raise HTTPException(404, f"no inspection {inspection_id!r}")
        order_reshoot(row["station"], row["id"], row["unit_id"], row["attempt"])
        return {"ordered": True, "attempt": row["attempt"] + 1}

    @app.post("/api/v1/stations/{station_id}/trigger")
    def trigger(request: Request, station_id: str,
                unit_id: str | None = None) -> dict[str, Any]:
        require(request, "operator")
        try:
            settings.station(station_id)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        command(station_id, TriggerCommand(station=station_id, unit_id=unit_id))
        return {"triggered": True}

    @app.put("/api/v1/expected/{unit_id}")
    def push_expected(unit_id: str, body: ExpectedBody,
                      authorization: str | None = Header(default=None)) -> dict[str, Any]:
        """An MES pushes one unit's expected record (token-authenticated)."""
        token = settings.erp.push_token
        if not token:
            raise HTTPException(404, "the push endpoint is off (erp.push_token is not set)")
        if not authorization or not hmac.compare_digest(authorization, f"Bearer {token}"):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        names = load_schema(settings.schema_file).field_names()
        try:
            record = record_from_row({"unit_id": unit_id, "order_id": body.order_id,
                                      **body.fields}, where=f"unit {unit_id}",
                                     field_names=names, seen=set())
        except ErpFileError as exc:
            raise HTTPException(422, str(exc)) from None
        writer = Store(db_path)
        try:
            writer.upsert_expected([(record.unit_id, record.order_id, record.fields)],
                                   source="push")
        finally:
            writer.close()
        return {"unit_id": record.unit_id, "fields": record.fields}

    @app.get("/metrics")
    def metrics() -> Response:
        registry = CollectorRegistry()
        registry.register(FileCollector(run_dir, max_age_s=3 * settings.health.stale_s))
        registry.register(_StatusCollector(settings, lambda: with_store(lambda s: s.counts())))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def attempt_row(inspection_id: str, attempt: int | None) -> dict[str, Any]:
        row = with_store(lambda s: s.inspection(inspection_id))
        if row is not None and attempt is not None and attempt != row["attempt"]:
            earlier = [a for a in with_store(lambda s: s.attempts(inspection_id)) or []
                       if a["attempt"] == attempt]
            row = earlier[0] if earlier else None
        if row is None or not row.get("image_path"):
            raise HTTPException(404, "no image")
        path = Path(row["image_path"]).resolve()
        if images_dir not in path.parents or not path.is_file():
            raise HTTPException(404, "no image")
        return dict(row, image_path=path)

    def load_rgb(path: Path) -> Any:
        try:
            return load_image(path)  # refused from its header when over the pixel budget
        except ImageError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/images/{inspection_id}")
    def image(inspection_id: str, thumb: bool = False, attempt: int | None = None,
              boxes: bool = False) -> Response:
        """The frame of an attempt (the latest by default); ``boxes``: with every field's box
        drawn and labelled; ``thumb``: 320 px wide."""
        row = attempt_row(inspection_id, attempt)
        cache = {"Cache-Control": "private, max-age=86400"}
        if not thumb and not boxes:
            return Response(row["image_path"].read_bytes(), media_type="image/jpeg",
                            headers=cache)
        rgb = load_rgb(row["image_path"])
        if boxes:
            rgb = draw_boxes(rgb, row["fields"])
        if thumb:
            scale = 320 / rgb.shape[1]
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return Response(jpeg(rgb), media_type="image/jpeg", headers=cache)

    @app.get("/images/{inspection_id}/fields/{field}")
    def field_crop(inspection_id: str, field: str, attempt: int | None = None) -> Response:
        """A field's box, with a margin, enlarged to be read from a step away."""
        row = attempt_row(inspection_id, attempt)
        box = (row["fields"].get(field) or {}).get("box")
        if not box:
            raise HTTPException(404, f"no box for {field!r}")
        rgb = load_rgb(row["image_path"])
        return Response(jpeg(crop_box(rgb, box)), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        report = assess_health(settings)
        body = {"status": "ok" if report["healthy"] else "unhealthy",
                "problems": report["problems"]}
        return JSONResponse(body, status_code=200 if report["healthy"] else 503)

    return app


class ExpectedBody(BaseModel):
    """What an MES pushes for one unit."""

    model_config = ConfigDict(extra="forbid")
    order_id: str | None = Field(default=None, max_length=80)
    fields: dict[str, str] = Field(max_length=64)


HISTORY_PARAMS = {"since", "until", "station", "unit_id", "order_id", "verdict",
                  "field_status", "limit", "cursor"}
CSV_COLUMNS = ["id", "station", "unit_id", "order_id", "attempt", "verdict", "reason",
               "captured_at", "stored_at", "backend"]
CSV_FIELD_PARTS = ("value", "expected", "status")


def history_filter(request: Request, since: str | None = None, until: str | None = None,
                   station: str | None = None, unit_id: str | None = None,
                   order_id: str | None = None, verdict: str | None = None,
                   field_status: str | None = None, limit: int = 50,
                   cursor: str | None = None) -> HistoryFilter:
    """The history filter from the query string; any unknown parameter or bad value is a
    422 that names it (a filter is never silently ignored)."""
    unknown = sorted(set(request.query_params) - HISTORY_PARAMS)
    if unknown:
        raise HTTPException(422, f"unknown query parameter(s): {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(HISTORY_PARAMS))})")
    try:
        return HistoryFilter(since=since, until=until, station=station, unit_id=unit_id,
                             order_id=order_id, verdict=verdict, field_status=field_status,
                             limit=limit, cursor=cursor).validated()
    except HistoryQueryError as exc:
        raise HTTPException(422, str(exc)) from None


Filtered = Annotated[HistoryFilter, Depends(history_filter)]
Page = tuple[list[dict[str, Any]], str | None]


def csv_line(values: list[Any]) -> str:
    """One CSV line."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out.pop("image_path", None)
    # the attempt in the URL makes each picture immutable, so browsers may cache it
    version = f"attempt={row.get('attempt') or 0}"
    out["evidence_url"] = f"/inspections/{row['id']}"
    out["image_url"] = f"/images/{row['id']}?{version}" if row.get("image_path") else None
    out["thumbnail_url"] = (f"/images/{row['id']}?thumb=1&{version}"
                            if row.get("image_path") else None)
    return out


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class PanelExposed(RuntimeError):
    """The panel would be open on the network without accounts."""


def run_panel(settings: Settings) -> None:
    """Entry point of ``nameplate panel``: serve on the configured host and port.

    Without any account the panel is open to whoever reaches it, so it then refuses to bind
    anything but loopback (create one with ``nameplate user add``)."""
    import uvicorn

    from appliance.panel.accounts import has_users

    if settings.panel.host not in LOOPBACK and not has_users(settings.data_dir / "appliance.db"):
        raise PanelExposed(f"panel.host = {settings.panel.host!r} needs accounts first "
                           "(nameplate user add NAME --role admin); until then it serves "
                           "loopback only")
    uvicorn.run(create_app(settings), host=settings.panel.host, port=settings.panel.port,
                log_level=settings.log_level.lower())
