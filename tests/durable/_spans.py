"""OpenTelemetry spans of a worker process, written to a file the test reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from tocsin.integrations.opentelemetry import TocsinInstrumentor


class JsonLines(SpanExporter):
    """One JSON line per finished span: its name, ids, parent and attributes."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # Opened per export: pool children forked from one parent append to
        # the same file, each line written whole.
        with self.path.open("a") as out:
            for span in spans:
                parent = span.parent
                line = {
                    "name": span.name,
                    "trace_id": f"{span.context.trace_id:032x}",
                    "span_id": f"{span.context.span_id:016x}",
                    "parent_span_id": None
                    if parent is None
                    else f"{parent.span_id:016x}",
                    "parent_is_remote": None if parent is None else parent.is_remote,
                    "attributes": dict(span.attributes or {}),
                }
                out.write(json.dumps(line) + "\n")
        return SpanExportResult.SUCCESS


def export_to(path: str) -> None:
    """Trace tocsin's receivers in this process into ``path``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLines(path)))
    TocsinInstrumentor().instrument(tracer_provider=provider)


def read(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
