"""The registry's contents as tables: what a person looks at in a registry's UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..images.client import RegistryClient

if TYPE_CHECKING:
    import pandas as pd


def image_table(client: RegistryClient) -> pd.DataFrame:
    """One row per repository and tag: the manifest digest it points at, its layers and their size."""
    import json

    import pandas as pd

    rows = []
    for repo in client.catalog():
        for tag in client.tags(repo):
            body, _, digest = client.manifest(repo, tag)
            layers = json.loads(body).get("layers") or []
            rows.append({"repository": repo, "tag": tag, "digest": digest, "layers": len(layers),
                         "size_mb": round(sum(layer.get("size", 0) for layer in layers) / 2**20, 2)})
    return pd.DataFrame(rows, columns=["repository", "tag", "digest", "layers", "size_mb"])
