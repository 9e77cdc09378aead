"""A tiny, real OCI image for runtime tests: one gzip layer with a Python HTTP server, pushed over the
distribution API. The server binds $HOST:$PORT, answers with its pod name, and has knobs for lessons:
/ready follows READY_FILE; CRASH=1 makes it exit at start."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.request

SERVER = b'''import http.server, json, os, sys
host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
print(json.dumps({"level": "info", "msg": "starting", "host": host, "port": port, "version": VERSION}), flush=True)
if os.environ.get("CRASH"):
    print(json.dumps({"level": "error", "msg": "crashing as asked"}), flush=True)
    sys.exit(3)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pod": os.environ.get("HOSTNAME", ""), "version": VERSION, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("X-Pod-Name", os.environ.get("HOSTNAME", ""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        print(json.dumps({"level": "info", "msg": "request", "path": self.path}), flush=True)
http.server.ThreadingHTTPServer((host, port), Handler).serve_forever()
'''


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def push_image(registry: str, repo: str, tag: str, version: str = "1", auth: tuple[str, str] | None = None,
               public: bool = True) -> str:
    """Push the test server image to ``registry`` (``http://host:port``), into a Harbor project made public (or
    private) if it does not exist; returns the manifest digest."""
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    if auth:
        public_project(registry, repo.partition("/")[0], headers, public)
    raw = _tar({"app/server.py": b"VERSION = %r\n" % version + SERVER})
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "PORT=8080"], "Cmd": ["python", "server.py"],
                   "WorkingDir": "/app", "ExposedPorts": {"8080/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()

    def blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = urllib.request.urlopen(urllib.request.Request(f"{registry}/v2/{repo}/blobs/uploads/", data=b"",
                                                              method="POST", headers=headers), timeout=10)
        loc = start.headers["Location"]
        loc = loc if loc.startswith("http") else registry + loc
        urllib.request.urlopen(urllib.request.Request(
            f"{loc}{'&' if '?' in loc else '?'}digest={digest}", data=data, method="PUT",
            headers={"Content-Type": "application/octet-stream", **headers}), timeout=10)
        return digest

    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(layer),
                    "size": len(layer)}]}).encode()
    res = urllib.request.urlopen(urllib.request.Request(
        f"{registry}/v2/{repo}/manifests/{tag}", data=manifest, method="PUT",
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json", **headers}), timeout=10)
    return res.headers["Docker-Content-Digest"]


def public_project(registry: str, name: str, headers: dict[str, str], public: bool = True) -> None:
    """Create the Harbor project ``name``, public unless told otherwise, unless it exists (Harbor takes no push to an
    unknown project; public: the kubelets pull anonymously)."""
    api = f"{registry}/api/v2.0/projects"
    try:
        urllib.request.urlopen(urllib.request.Request(f"{api}?project_name={name}", method="HEAD", headers=headers),
                               timeout=10)
        return
    except urllib.error.HTTPError as err:
        if err.code != 404:
            raise
    body = json.dumps({"project_name": name, "metadata": {"public": str(public).lower()}}).encode()
    urllib.request.urlopen(urllib.request.Request(api, data=body, method="POST", headers={
        "Content-Type": "application/json", **headers}), timeout=10)
