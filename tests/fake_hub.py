"""A stdlib fake of the Hugging Face Hub HTTP API: enough for create_repo, create_commit and downloads.

Start it with `FakeHub().start()`; point `HF_ENDPOINT` at `hub.url` *before* importing huggingface_hub. Every commit is
recorded in `hub.commits` (message and file paths); files are kept in memory. It cannot prove authentication, large
file (LFS/xet) storage or the Hub's server-side model-card validation: it accepts any token and checks YAML syntax only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sha(self, repo: str) -> str:
        files = self.repos.get(repo, {})
        digest = hashlib.sha1(json.dumps(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in files.items())).encode())
        return digest.hexdigest()


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(
            self, status: int, body: bytes | dict | list = b"", headers: dict | None = None, head: bool = False
        ) -> None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _missing(self, code: str, head: bool = False) -> None:
            self._send(404, {"error": code}, {"X-Error-Code": code}, head=head)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:  # noqa: N802
            path = unquote(urlparse(self.path).path)
            body = self._body()
            if path == "/api/repos/create":
                payload = json.loads(body or b"{}")
                repo = (
                    f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
                )
                if repo in hub.repos:
                    return self._send(409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo}"})
                hub.repos[repo] = {}
                return self._send(200, {"url": f"{hub.url}/{repo}", "name": repo})
            if path == "/api/validate-yaml":
                return self._send(200, {"errors": [], "warnings": []})
            parts = path.split("/")
            if len(parts) >= 7 and parts[1:3] == ["api", "models"] and parts[5] == "preupload":
                files = json.loads(body)["files"]
                return self._send(
                    200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
                )
            if len(parts) >= 7 and parts[1:3] == ["api", "models"] and parts[5] == "commit":
                repo = f"{parts[3]}/{parts[4]}"
                if repo not in hub.repos:
                    return self._missing("RepoNotFound")
                message, paths = "", []
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "header":
                        message = item["value"].get("summary", "")
                    elif item["key"] == "file":
                        hub.repos[repo][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        paths.append(item["value"]["path"])
                    elif item["key"] == "deletedFile":
                        hub.repos[repo].pop(item["value"]["path"], None)
                sha = hub.sha(repo)
                hub.commits.append({"repo": repo, "message": message, "files": sorted(paths), "sha": sha})
                return self._send(
                    200, {"commitUrl": f"{hub.url}/{repo}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None}
                )
            return self._missing("EntryNotFound")

        def do_GET(self) -> None:  # noqa: N802
            self._read(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._read(head=True)

        def _read(self, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo = f"{parts[2]}/{parts[3]}"
                if repo not in hub.repos:
                    return self._missing("RepoNotFound", head)
                files = hub.repos[repo]
                if len(parts) == 4 or parts[4] == "revision":
                    return self._send(
                        200,
                        {
                            "id": repo,
                            "modelId": repo,
                            "sha": hub.sha(repo),
                            "private": False,
                            "siblings": [{"rfilename": f} for f in sorted(files)],
                        },
                        head=head,
                    )
                if parts[4] == "tree":
                    prefix = "/".join(parts[6:])
                    entries = [
                        {"type": "file", "path": f, "size": len(v), "oid": hashlib.sha1(v).hexdigest()}
                        for f, v in sorted(files.items())
                        if not prefix or f.startswith(prefix + "/")
                    ]
                    if prefix and not entries:
                        return self._missing("EntryNotFound", head)
                    return self._send(200, entries, head=head)
                return self._missing("EntryNotFound", head)
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, name = f"{parts[0]}/{parts[1]}", "/".join(parts[4:])
                if repo not in hub.repos:
                    return self._missing("RepoNotFound", head)
                if name not in hub.repos[repo]:
                    return self._missing("EntryNotFound", head)
                content = hub.repos[repo][name]
                return self._send(
                    200,
                    content,
                    {
                        "X-Repo-Commit": hub.sha(repo),
                        "ETag": f'"{hashlib.sha1(content).hexdigest()}"',
                        "Content-Type": "application/octet-stream",
                    },
                    head=head,
                )
            return self._missing("EntryNotFound", head)

    return Handler
