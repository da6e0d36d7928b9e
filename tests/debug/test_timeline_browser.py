"""The demo's timeline in a real browser: Debian's headless Chromium loads the
waterfall of a sign-up request served by the demo's uvicorn."""

from __future__ import annotations

import html.parser
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from support import free_port, server_unavailable

ROOT = Path(__file__).parents[2]
ARTIFACTS = Path(os.environ.get("TOCSIN_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class Rows(html.parser.HTMLParser):
    """The rows of the waterfall table, as (classes, text of the first cell)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self._in_table = self._in_cell = False
        self._cell = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("id") == "waterfall":
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append((found.get("class") or "", ""))
            self._cell = 0
        elif self._in_table and tag == "td":
            self._cell += 1
            self._in_cell = self._cell == 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data: str) -> None:
        if self._in_cell and self.rows:
            classes, text = self.rows[-1]
            self.rows[-1] = (classes, text + data)


def chromium(*arguments: str, cwd: Path) -> str:
    run = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_signup_waterfall_renders_in_chromium_in_order() -> None:
    if shutil.which("chromium") is None:
        server_unavailable("Debian's chromium (scripts/ensure-chromium.sh installs it)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.shop", "--serve", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo server did not start"
                assert process.poll() is None
                time.sleep(0.1)
        created = httpx.post(
            base + "/signup",
            json={"email": "carol@example.com", "password": "pw"},
            timeout=5,
        )
        assert created.status_code == 201
        assert created.headers["server-timing"].startswith("tocsin;dur=")
        url = f"{base}/_tocsin/r/{created.headers['x-tocsin-trace']}"
        with tempfile.TemporaryDirectory() as profile:
            dom = chromium(
                f"--user-data-dir={profile}", "--dump-dom", url, cwd=Path(profile)
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "timeline-signup.png"
            shot.unlink(missing_ok=True)
            chromium(
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                "--window-size=1400,700",
                url,
                cwd=Path(profile),
            )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    parser = Rows()
    parser.feed(dom)
    texts = [text.split()[0] for _, text in parser.rows[1:]]
    # The request, the INSERT's post_save with the profile made in the same
    # transaction and the welcome email enqueued, then the Profile's own
    # post_save, and request_finished last.
    start = texts.index("request_started")
    first_save = texts.index("post_save")
    profile = texts.index("examples.shop.signals.create_profile")
    welcome = texts.index("examples.shop.signals.send_welcome_email")
    assert start < first_save < profile < welcome
    assert texts[-2:] == ["request_finished", texts[-1]]
    classes = dict(zip(texts, (c for c, _ in parser.rows[1:]), strict=False))
    assert classes["examples.shop.signals.send_welcome_email"] == "call durable"
    assert shot.stat().st_size > 10_000  # a real rendered page
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
