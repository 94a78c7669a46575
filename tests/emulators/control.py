"""The `/_emulator/*` HTTP control API, for processes that cannot call the Python API (demo, bench).

POST   /_emulator/faults     {"faults": [<fault>], "times": 1|null}
                             or {"rate": 0.3, "faults": [<fault>], "seed": 1}
DELETE /_emulator/faults     clear all faults
GET    /_emulator/faults     the current schedule
GET    /_emulator/requests   recent requests, bodies summarised
DELETE /_emulator/requests   forget recorded requests
POST   /_emulator/reset      clear faults and recorded requests
GET    /_emulator/health     liveness
GET    /_emulator/images/<name>  images handed out as URLs
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .faults import Fault, FaultSchedule
from .forms import json_object
from .images import ImageStore
from .recording import RequestLog
from .server import HttpRequest, Response

PREFIX = "/_emulator/"


@dataclass(frozen=True)
class ControlApi:
    """Answers control requests against one emulator's schedule, log and image store."""

    provider: str
    schedule: FaultSchedule
    log: RequestLog
    images: ImageStore

    def handle(self, request: HttpRequest) -> Response:
        route = request.path[len(PREFIX) :]
        method = request.method
        if route.startswith("images/") and method == "GET":
            return self._image(route[len("images/") :])
        if route == "health" and method == "GET":
            return Response.json(200, {"status": "ok", "provider": self.provider, "requests": len(self.log.snapshot())})
        if route == "faults":
            if method == "POST":
                return self._set_faults(request.body)
            if method == "DELETE":
                self.schedule.clear()
                return Response.json(200, {"ok": True})
            if method == "GET":
                return Response.json(200, self.schedule.describe())
        if route == "requests":
            if method == "GET":
                return Response.json(200, {"requests": [r.summary() for r in self.log.snapshot()]})
            if method == "DELETE":
                self.log.clear()
                return Response.json(200, {"ok": True})
        if route == "reset" and method == "POST":
            self.schedule.clear()
            self.log.clear()
            return Response.json(200, {"ok": True})
        return Response.json(404, {"error": f"no control route {method} {request.path}"})

    def _image(self, name: str) -> Response:
        found = self.images.get(name)
        if found is None:
            return Response.json(404, {"error": f"image {name} not found or expired"})
        content_type, data = found
        return Response(200, (("content-type", content_type),), data)

    def _set_faults(self, body: bytes) -> Response:
        data = json_object(body)
        if data is None:
            return Response.json(400, {"error": "body must be a JSON object"})
        try:
            faults = _faults(data.get("faults"))
            if "rate" in data:
                seed = data.get("seed")
                self.schedule.set_rate(float(data["rate"]), faults, None if seed is None else int(seed))
            else:
                if not faults:
                    raise ValueError("'faults' must not be empty")
                times = data.get("times", 1)
                for fault in faults:
                    self.schedule.inject(fault, None if times is None else int(times))
        except (ValueError, TypeError) as exc:
            return Response.json(400, {"error": str(exc)})
        return Response.json(200, {"ok": True, **self.schedule.describe()})


def _faults(value: Any) -> list[Fault]:
    if not isinstance(value, list):
        raise ValueError("'faults' must be a list of fault objects")
    return [Fault.from_json(item) for item in value]
