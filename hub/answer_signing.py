"""Signs the hub's answer to every authenticated device request (docs/protocol.md §2): an ASGI middleware
that holds the answer of a request the device dependency verified, and adds ``X-Kiosk-Answer-Signature``
over the request's signature, the status and the whole body. Answers to anyone else pass through as they
are streamed.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.signing import ANSWER_SIGNATURE_HEADER, sign_answer

from .dependencies import ANSWER_KEY


class AnswerSigning:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the request's own: Request.state writes here
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_signed(message: Message) -> None:
            nonlocal start
            key = state.get(ANSWER_KEY)
            if message["type"] == "http.response.start":
                if key is None:
                    await send(message)
                else:
                    start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            secret, request_signature = key
            body = b"".join(chunks)
            signature = sign_answer(secret, request_signature, start["status"], body)
            headers = [
                *start.get("headers", []),
                (ANSWER_SIGNATURE_HEADER.lower().encode(), signature.encode()),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_signed)
