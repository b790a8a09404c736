"""A scripted chat-completions peer for the client's failure tests (stdlib only, no model).

Run as ``python tests/fake_llm_server.py --port N --mode MODE``; ``--port 0`` picks a free port. Once
listening it prints ``listening on PORT`` on stdout. Every POST is counted and recorded; ``GET /count`` answers
``{"count": N}``, ``GET /last`` the last POST and ``GET /requests`` all of them (each ``{"method", "path",
"headers", "body_b64"}``), and ``GET /v1/models`` a one-model list (for readiness checks).

Modes (what a POST gets):

``ok``                 a valid chat completion with usage
``slow``               sleeps ``--delay`` seconds (default 5), then a valid completion
``error500-then-ok``   the first request 500 with a JSON error body, later ones a valid completion
``error400``           400 ``{"error": {"message": "context length exceeded: 9999 tokens"}}``
``error401``           401 whose message echoes the bearer token it was sent (as careless servers do)
``error401-long``      the same, the token placed across the 500th character of a long message
``malformed``          200, ``application/json``, body ``{not json``
``wrong-shape``        200, valid JSON ``{"foo": 1}``
``html``               200, ``text/html``: a page echoing the request headers (a misrouted debug proxy)
``judge``              a judge that reads the grading prompt of ``workbench.tasks.judge``: a keypoints prompt gets
                       ``{"covered": [1]}`` (point 1 of those listed), an open prompt ``{"score": 4, "reason": …}``
``scripted``           request N gets item N of the JSON list of reply texts in ``--replies FILE`` (the last one
                       repeats once the list runs out)
``echo``               a completion echoing the transcript of the last user message (the text between
                       ``Transcript:\n`` and ``\n\nFormatted transcript:``, else the whole message): a perfect formatter

Every completion enforces the request's ``max_tokens`` the way a real server does: a token is 4 characters (the
workbench's own estimate), the text is cut after ``max_tokens`` of them and ``finish_reason`` is then
``"length"``; the echo mode's usage counts tokens the same way.

Audio modes answer by route: chat completions get a completion whose text is :data:`LONG_REPLY` and whose
usage differs per request (request N: ``prompt_tokens`` 1000+N, ``completion_tokens`` 50+N);
``/audio/transcriptions`` gets ``{"text": LONG_REPLY, "usage": {"type": "tokens", "input_tokens": 200+N,
"output_tokens": 20+N, ...}}``.

``audio``              as above
``audio-empty-2``      as above, but the 2nd request's completion has empty content ``""``
``audio-no-usage``     as above without any ``usage`` field

Audio modes that behave like real servers do:

``audio-first-30s``    200, but transcribes only the first 30 s of each request's audio (vLLM serving Qwen2-Audio
                       does this): :data:`WORDS_PER_S` words per second of the first 30 s of the WAV it was sent
``audio-length``       200 with :data:`LONG_REPLY` and ``finish_reason: "length"`` (the output hit ``max_tokens``);
                       ``completion_tokens`` is the request's ``max_tokens``

A question-answering mode (issue 13), for audio and text chat alike:

``qa``                 answers by the instruction in the last user message: "yes or no" → "Yes, it is.", "a number"
                       → "2", "letter" → "(B)", "seconds" → "42 seconds", else "Friday"; a message holding
                       "The answers from the parts:" (a combining call) → "Yes, combined."; a message holding
                       ``[fail]`` → 500 every time

``--max-bytes N`` (any mode): a POST whose body is larger than N bytes gets 413 with
:data:`TOO_LARGE_MESSAGE`, as nginx, OpenAI and Gemini answer payloads above their limit.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "slow", "error500-then-ok", "error400", "error401", "error401-long", "malformed", "wrong-shape", "html",
         "audio", "audio-empty-2", "audio-no-usage", "audio-first-30s", "audio-length", "echo", "judge", "scripted", "qa")
JUDGE_REASON = "covers the main point"
REPLY_TEXT = "SPEAKER_00: Hello there."
SERVER_500_MESSAGE = "fake overload: the model is busy"
CONTEXT_MESSAGE = "context length exceeded: 9999 tokens"
#: what the audio modes answer: two labelled paragraphs, enough words for a 30 s window of speech
LONG_REPLY = ("Speaker 1: " + " ".join(["alpha"] * 35) + "\n\nSpeaker 2: " + " ".join(["beta"] * 35))
#: audio-first-30s: words per second of the audio it "hears" (conversational speech: 2-3 words/s)
WORDS_PER_S = 2.5
HEARD_S = 30.0
TOO_LARGE_MESSAGE = "Request Entity Too Large"


def completion(model: str, text: str = REPLY_TEXT, usage: tuple[int, int] | None = (12, 5),
               finish_reason: str = "stop") -> dict:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return body


def tokens(text: str) -> int:
    """The fake's token count: 4 characters a token, rounded up (the workbench's own estimate)."""
    return -(-len(text) // 4)


def capped(body: dict, max_tokens: int | None) -> dict:
    """Enforce ``max_tokens`` on a completion: cut the text after that many tokens, finish_reason "length"."""
    if max_tokens is None or "choices" not in body:
        return body
    choice = body["choices"][0]
    text = choice["message"]["content"] or ""
    if tokens(text) > max_tokens:
        choice["message"]["content"] = text[: 4 * max_tokens]
        choice["finish_reason"] = "length"
        if "usage" in body:
            body["usage"]["completion_tokens"] = max_tokens
            body["usage"]["total_tokens"] = body["usage"]["prompt_tokens"] + max_tokens
    return body


def echo_answer(request: dict, model: str) -> dict:
    user = next((m.get("content") or "" for m in reversed(request.get("messages") or []) if m.get("role") == "user"), "")
    start, end = user.find("Transcript:\n"), user.rfind("\n\nFormatted transcript:")
    text = user[start + len("Transcript:\n"):end] if 0 <= start < end else user
    prompt = sum(tokens(m.get("content") or "") for m in request.get("messages") or [])
    return completion(model, text, (prompt, tokens(text)))


def judge_answer(request: dict, model: str) -> dict:
    user = next((m.get("content") or "" for m in reversed(request.get("messages") or []) if m.get("role") == "user"), "")
    text = '{"covered": [1]}' if '"covered"' in user else json.dumps({"score": 4, "reason": JUDGE_REASON})
    return completion(model, text)


def last_user_text(request: dict) -> str:
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text") or "" for p in content if p.get("type") == "text")
            return content or ""
    return ""


def qa_answer(request: dict) -> str:
    text = last_user_text(request)
    if "The answers from the parts:" in text:
        return "Yes, combined."
    for marker, reply in (("yes or no", "Yes, it is."), ("a number", "2"), ("letter", "(B)"), ("seconds", "42 seconds")):
        if marker in text:
            return reply
    return "Friday"


def wav_seconds(request: dict) -> float:
    """Seconds of the WAV in a chat request's input_audio part (0 when there is none)."""
    for message in request.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "input_audio":
                with wave.open(io.BytesIO(base64.b64decode(part["input_audio"]["data"])), "rb") as f:
                    return f.getnframes() / f.getframerate()
    return 0.0


def audio_answer(path: str, model: str, n: int, mode: str, request: dict) -> dict:
    """What the audio modes answer to request number ``n`` on ``path`` (``request``: the JSON body)."""
    if mode == "audio-first-30s":
        heard = min(wav_seconds(request), HEARD_S)
        return completion(model, "Speaker 1: " + " ".join(["word"] * round(WORDS_PER_S * heard)), (1000 + n, 50 + n))
    if mode == "audio-length":
        return completion(model, LONG_REPLY, (1000 + n, int(request.get("max_tokens") or 0)), finish_reason="length")
    with_usage = mode != "audio-no-usage"
    if path.rstrip("/").endswith("/audio/transcriptions"):
        body: dict = {"text": LONG_REPLY}
        if with_usage:
            body["usage"] = {"type": "tokens", "input_tokens": 200 + n, "output_tokens": 20 + n, "total_tokens": 220 + 2 * n}
        return body
    text = "" if mode == "audio-empty-2" and n == 2 else LONG_REPLY
    return completion(model, text, (1000 + n, 50 + n) if with_usage else None)


class State:
    def __init__(self, mode: str, delay: float, max_bytes: int | None = None, replies: list[str] | None = None):
        self.mode = mode
        self.replies = replies or [REPLY_TEXT]
        self.delay = delay
        self.max_bytes = max_bytes
        self.count = 0
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def record(self, request: dict) -> None:
        with self.lock:
            self.requests.append(request)

    def next_count(self) -> int:
        with self.lock:
            self.count += 1
            return self.count


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - quiet: tests read stdout for the port
            pass

        def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def send_json(self, status: int, obj: object) -> None:
            self.send(status, json.dumps(obj).encode())

        def do_GET(self):  # noqa: N802
            if self.path.rstrip("/") == "/count":
                self.send_json(200, {"count": state.count})
            elif self.path.rstrip("/") == "/last":
                self.send_json(200, state.requests[-1] if state.requests else None)
            elif self.path.rstrip("/") == "/requests":
                self.send_json(200, state.requests)
            elif self.path.rstrip("/").endswith("/models"):
                self.send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "tests"}]})
            else:
                self.send_json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            state.record({"method": "POST", "path": self.path, "headers": dict(self.headers.items()),
                          "body_b64": base64.b64encode(raw).decode("ascii")})
            n = state.next_count()
            try:
                request = json.loads(raw or b"{}")
                request = request if isinstance(request, dict) else {}
                model = request.get("model", "fake-model")
            except ValueError:  # not JSON (a multipart upload, say)
                request, model = {}, "fake-model"
            max_tokens = request.get("max_tokens")

            def send_completion(body: dict) -> None:
                self.send_json(200, capped(body, max_tokens))

            mode = state.mode
            if state.max_bytes is not None and len(raw) > state.max_bytes:
                self.send_json(413, {"error": {"message": TOO_LARGE_MESSAGE, "type": "invalid_request_error"}})
            elif mode == "slow":
                time.sleep(state.delay)
                send_completion(completion(model))
            elif mode == "qa" and "[fail]" in last_user_text(request):
                self.send_json(500, {"error": {"message": SERVER_500_MESSAGE, "type": "server_error"}})
            elif mode == "qa":
                send_completion(completion(model, qa_answer(request)))
            elif mode == "echo":
                send_completion(echo_answer(request, model))
            elif mode == "judge":
                send_completion(judge_answer(request, model))
            elif mode == "scripted":
                send_completion(completion(model, state.replies[min(n, len(state.replies)) - 1]))
            elif mode == "error500-then-ok" and n == 1:
                self.send_json(500, {"error": {"message": SERVER_500_MESSAGE, "type": "server_error"}})
            elif mode == "error400":
                self.send_json(400, {"error": {"message": CONTEXT_MESSAGE, "type": "invalid_request_error"}})
            elif mode in ("error401", "error401-long"):
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                prefix = "Incorrect API key provided: "
                if mode == "error401-long":
                    prefix += "." * (490 - len(prefix))
                self.send_json(401, {"error": {"message": prefix + token, "type": "invalid_request_error"}})
            elif mode.startswith("audio"):
                send_completion(audio_answer(self.path, model, n, mode, request))
            elif mode == "malformed":
                self.send(200, b"{not json")
            elif mode == "wrong-shape":
                self.send_json(200, {"foo": 1})
            elif mode == "html":
                items = sorted(self.headers.items(), key=lambda kv: kv[0].lower() != "authorization")  # the key first
                headers = "".join(f"{k}: {v}\n" for k, v in items)
                page = f"<html><body><h1>Welcome to nginx!</h1><pre>{headers}</pre></body></html>"
                self.send(200, page.encode(), "text/html; charset=utf-8")
            else:
                send_completion(completion(model))

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--delay", type=float, default=5.0, help="seconds the slow mode waits")
    parser.add_argument("--max-bytes", type=int, default=None, help="answer 413 to a POST body larger than this")
    parser.add_argument("--replies", default=None, help="scripted mode: a JSON file holding a list of reply texts")
    args = parser.parse_args(argv)
    replies = None
    if args.replies:
        with open(args.replies, encoding="utf-8") as f:
            replies = [str(r) for r in json.load(f)]
    state = State(args.mode, args.delay, args.max_bytes, replies)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(state))
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
