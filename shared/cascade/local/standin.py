"""What every local provider stand-in offers the local stack.

A stand-in plays one provider on loopback: it speaks the provider's real API to our channel
code, keeps what was "delivered" (the customers' phones and inboxes, for ``/local/outbox``), and
plays the customer (``/local/simulate``) by sending the provider's real, signed webhooks to the
stack's ``/webhooks/<provider>``. Fault injection (``/local/faults``) is asked per send through
:data:`cascade.local.faults.FAULTS`."""

from __future__ import annotations

from typing import Any, ClassVar

from cascade.local.httpserver import LoopbackServer, json_answer

Answer = tuple[int, dict[str, str], bytes]


class StandIn:
    name: ClassVar[str]  # shown in /local/info as "<name>_api"
    channels: ClassVar[tuple[str, ...]]  # channels whose messages it carries

    def __init__(self, port: int = 0) -> None:
        self.server: LoopbackServer | None = LoopbackServer(self.handle, port) if self.serves_http else None
        self.stack: Any = None  # the LocalStack, once connected

    serves_http: ClassVar[bool] = True

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    def start(self) -> None:
        if self.server:
            self.server.start()

    def stop(self) -> None:
        if self.server:
            self.server.stop()

    # -- wiring ---------------------------------------------------------------------------------

    def parameters(self) -> dict[str, str]:
        """Template parameters that point the stack at this stand-in (its API base, ids)."""
        return {}

    def secrets(self) -> dict[str, str]:
        """Keys this provider needs in the provider secret."""
        return {}

    def connect(self, stack: Any) -> None:
        """After the deploy: what an operator does once (register webhooks). Keep ``stack``."""
        self.stack = stack

    # -- what it delivered, and playing the customer --------------------------------------------

    def outbox(self) -> list[dict[str, Any]]:
        """Delivered messages: ``{"channel", "provider_message_id", "to", "subject", "text"}``."""
        return []

    def simulate(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        """Play the customer's (or provider's) reaction to ``message`` (an outbox entry)."""
        return json_answer(422, {"error": f"cannot simulate {request.get('signal')!r} on {message['channel']}"})

    def open_link(self, link: str, who: str) -> Answer | None:
        """The customer opens a binding deep link; None if the link is not for this provider."""
        return None

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        return json_answer(404, {"error": "not found"})


def invalid(field: str, message: str) -> Answer:
    """A 422 naming the field of the /local request at fault."""
    return json_answer(422, {"error": "invalid request", "details": [{"field": field, "message": message}]})


__all__ = ["Answer", "StandIn", "invalid"]
