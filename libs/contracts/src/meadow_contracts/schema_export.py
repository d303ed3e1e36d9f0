"""Export the JSON Schema of the envelope and of every event model (`make contracts`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .envelope import Envelope
from .events import EVENT_MODELS

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def render_schemas() -> dict[str, str]:
    """File name → JSON text, deterministic so the committed files can be compared byte for byte."""
    rendered: dict[str, str] = {"envelope.json": _dump(Envelope.model_json_schema())}
    for model in EVENT_MODELS:
        schema = model.model_json_schema()
        schema["$id"] = model.event_type
        schema["x-topic"] = model.topic
        rendered[f"{model.event_type}.json"] = _dump(schema)
    return rendered


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    wanted = render_schemas()
    for stale in {p.name for p in SCHEMA_DIR.glob("*.json")} - wanted.keys():
        (SCHEMA_DIR / stale).unlink()
    for name, text in wanted.items():
        (SCHEMA_DIR / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} schemas to {SCHEMA_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
