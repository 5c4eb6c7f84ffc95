"""Label Studio's REST API: the projects ``locowatch label export`` wrote, pushed to a
running Label Studio, and their labels pulled back as its JSON export.

Five documented calls (https://api.labelstud.io): create a project, connect a local-files
storage (what serves the window images), import tasks, list projects, export. Through
``requests`` rather than Label Studio's SDK, which pulls some forty packages (another
OpenCV build among them) into the gateway's environment for these five calls.

The API token is read from ``LABEL_STUDIO_TOKEN`` (Label Studio: Account & Settings ->
Access Token), never from the command line, where other users of the machine see it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import requests

from locowatch.errors import LocowatchError, UsageError
from onboarding.labelling import KINDS

log = logging.getLogger(__name__)

TOKEN_ENV = "LABEL_STUDIO_TOKEN"
TIMEOUT_S = 120.0  # an export of a big project takes a while


class LabelStudioError(LocowatchError):
    """Label Studio refused a call or could not be reached."""


class LabelStudio:
    def __init__(self, url: str, token: str) -> None:
        if not token:
            raise UsageError(f"no Label Studio token: set {TOKEN_ENV}")
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self.session.request(method, self.url + path, json=body, timeout=TIMEOUT_S)
        except requests.RequestException as error:
            raise LabelStudioError(f"Label Studio at {self.url}: {error}") from None
        if response.status_code >= 400:
            raise LabelStudioError(
                f"Label Studio {method} {path}: HTTP {response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    def projects(self) -> dict[str, int]:
        """Project ids by title."""
        found: dict[str, int] = {}
        page = 1
        while True:
            listing = self._call("GET", f"/api/projects?page={page}&page_size=100")
            for project in listing["results"]:
                found[project["title"]] = project["id"]
            if not listing.get("next"):
                return found
            page += 1

    def push(self, windows: Path, title: str) -> dict[str, int]:
        """One project per kind of ``windows`` (``<title> position`` ...), its images
        served from their folder, its tasks with their predictions imported."""
        existing = self.projects()
        ids = {}
        for kind in KINDS:
            folder = windows.resolve() / kind
            name = f"{title} {kind}"
            if name in existing:
                raise UsageError(f"Label Studio has a project {name!r} already: another --title")
            config = (folder / "label_config.xml").read_text(encoding="utf-8")
            project = self._call("POST", "/api/projects", {"title": name, "label_config": config})
            ids[kind] = project["id"]
            self._call(
                "POST",
                "/api/storages/localfiles",
                {"project": project["id"], "path": str(folder / "images"), "title": "windows",
                 "use_blob_urls": False},
            )  # fmt: skip
            tasks = json.loads((folder / "tasks.json").read_text(encoding="utf-8"))
            self._call("POST", f"/api/projects/{project['id']}/import", tasks)
            log.info("Label Studio project %r: %d tasks", name, len(tasks))
        return ids

    def pull(self, title: str, out: Path) -> dict[str, Path]:
        """The JSON export of each kind's project (every task, labelled or not)."""
        existing = self.projects()
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        for kind in KINDS:
            name = f"{title} {kind}"
            if name not in existing:
                raise UsageError(f"Label Studio has no project {name!r}")
            tasks = self._call(
                "GET",
                f"/api/projects/{existing[name]}/export?exportType=JSON&download_all_tasks=true",
            )
            files[kind] = out / f"{kind}.json"
            files[kind].write_text(json.dumps(tasks, ensure_ascii=False) + "\n", encoding="utf-8")
        return files
