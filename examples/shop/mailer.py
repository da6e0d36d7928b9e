"""A stand-in for an email service: it keeps what it sends."""

outbox: list[tuple[str, str]] = []


def send(to: str, text: str) -> None:
    outbox.append((to, text))
