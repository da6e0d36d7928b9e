"""The demo (``make demo``) runs end to end and tells the seed's story."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support import free_port

ROOT = Path(__file__).resolve().parent.parent


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.shop", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_prints_the_timeline_of_each_request_and_exits_0() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    requests = out.split("\nPOST ")[1:]
    assert [block.split()[0] for block in requests] == [
        "/signup",
        "/login",
        "/login",
        "/orders",
        "/logout",
    ]
    signup, failed_login, login, order, logout = requests
    # post_save with created=True, the profile written in the same transaction,
    # and the welcome email only after the commit.
    assert (
        "post_save          sender=User instance=User(alice@example.com) created=True"
        in signup
    )
    assert signup.index("create_profile: added Profile('alice')") < signup.index(
        "== COMMIT"
    )
    # The welcome email is durable: a worker delivers it after the commit.
    delivered = "send_welcome_email (worker, attempt 1): mailed alice@example.com"
    assert signup.index("== COMMIT\n") < signup.index(delivered)
    assert signup.index(delivered) < signup.index(
        "== COMMIT (the worker's transaction)"
    )
    assert "post_save          sender=Profile" in signup
    # Every request is started and finished.
    for block in requests:
        assert block.count("-> request_started") == 1
        assert block.count("-> request_finished") == 1
    # The failed login reaches the audit with the password masked.
    assert "-> 401" in failed_login
    assert "'password': '********************'" in failed_login
    assert "audit_login: audit entry 'login alice@example.com'" in login
    assert (
        "notify_customer: mailed alice@example.com 'Order #1 confirmed: 42.00 EUR'"
        in order
    )
    assert "audit_logout: audit entry 'logout alice@example.com'" in logout
    # No password reaches any output: not the receivers, not the logs.
    assert "correct horse" not in out + result.stderr
    assert "wrong guess" not in out + result.stderr
    assert "Outbox (2 emails):" in out
    # Each request ends with its receivers' timings, from the observation hook.
    assert re.search(r"receivers' timings: create_profile \d+\.\d\d ms\n", signup)
    assert re.search(r"receivers' timings: notify_customer \d+\.\d\d ms\n", order)
    # The wiring listing comes from receivers_info().
    assert "send_welcome_email   sender=User" in out
    assert (
        "durable=durable('shop.welcome_email', queue='default'), "
        "dispatch_uid='shop.welcome_email'" in out
    )


def test_demo_serve_mode_answers_a_browser_and_prints_each_request() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.shop", "--serve", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(base + "/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo server did not start"
                assert process.poll() is None, (
                    process.stderr.read() if process.stderr else ""
                )
                time.sleep(0.1)
        assert page.status_code == 200
        assert "<button" in page.text
        created = httpx.post(
            base + "/signup",
            json={"email": "bob@example.com", "password": "pw"},
            timeout=5,
        )
        assert created.status_code == 201
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
    assert "send_welcome_email (worker, attempt 1): mailed bob@example.com" in out, (
        out + err
    )
