"""Helpers shared by the tests that start real server processes on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import traceback
import urllib.request

SECRET = "sk-test-SECRET-1234567890"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text, f"the API key leaked into: {text[:2000]}"


def error_texts(exc: BaseException) -> tuple[str, str, str]:
    """Everything a user or a log could see of an exception: message, repr, formatted traceback."""
    return str(exc), repr(exc), "".join(traceback.format_exception(exc))
