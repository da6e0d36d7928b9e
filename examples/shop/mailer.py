"""A stand-in for an email service: it keeps what it sends."""

outbox: list[tuple[str, str]] = []
_seen: set[str] = set()


def send(to: str, text: str, idempotency_key: str | None = None) -> bool:
    """Send, unless a message with this idempotency key was sent already.

    Real email APIs take such a key: a redelivered event then sends nothing.
    """
    if idempotency_key is not None:
        if idempotency_key in _seen:
            return False
        _seen.add(idempotency_key)
    outbox.append((to, text))
    return True
