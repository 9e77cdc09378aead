"""A tiny PyPI simple index for tests to proxy: generated wheels served over loopback HTTP, counting requests,
optionally slow (single-flight) and stoppable (the outage)."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from labkit.core.network import free_port


def make_wheel(folder: Path, name: str, version: str, module: str | None = None) -> Path:
    """A valid pure-Python wheel ``name-version`` with one module, which pip installs."""
    dist = name.replace("-", "_")
    module = module or dist
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{module}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: labkit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for arcname, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(path, "w") as z:
        for arcname, text in files.items():
            z.writestr(arcname, text)
    return path


class TinyIndex:
    """``/simple/<name>/`` and ``/files/<wheel>`` over the wheels in ``folder``."""

    def __init__(self, folder: Path, delay: float = 0.0) -> None:
        self.folder, self.delay = folder, delay
        self.requests: Counter[str] = Counter()
        self.port = free_port()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> TinyIndex:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                index.requests[self.path] += 1
                body, content_type = index.answer(self.path)
                if body is None:
                    self.send_error(404)
                    return
                if index.delay:
                    time.sleep(index.delay)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def answer(self, path: str) -> tuple[bytes | None, str]:
        parts = path.strip("/").split("/")
        if parts[0] == "simple" and len(parts) == 2:
            wheels = sorted(p for p in self.folder.glob("*.whl")
                            if p.name.split("-")[0].replace("_", "-").lower() == parts[1])
            if not wheels:
                return None, ""
            links = "".join(f'<a href="/files/{p.name}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">'
                            f"{p.name}</a>\n" for p in wheels)
            return f"<!DOCTYPE html><html><body>{links}</body></html>".encode(), "text/html"
        if parts[0] == "files" and len(parts) == 2 and (self.folder / parts[1]).is_file():
            return (self.folder / parts[1]).read_bytes(), "application/octet-stream"
        return None, ""
