"""Strict JSON bodies: what Python's parser or storage would choke on is a 422, never a 500."""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
from flask_smorest import abort
from webargs.flaskparser import FlaskParser, is_json_request

_PARSED = "kb_service.json_body"  # where the parsed body is kept, in the request's WSGI environ
_MISSING = object()


def strict_loads(raw: bytes) -> Any:
    """Parse JSON, raising JSONDecodeError for anything that is not clean UTF-8 JSON."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
        _reject_surrogates(value)
        return value
    except json.JSONDecodeError:
        raise
    except (UnicodeError, RecursionError, ValueError) as error:
        # Lone surrogates ("\ud800"), nesting past the recursion limit, integers over
        # Python's 4300-digit limit: the body is not usable JSON.
        raise json.JSONDecodeError(f"unusable JSON: {type(error).__name__}", "?", 0) from None


def request_json(req: flask.Request) -> Any:
    """The request's body parsed by `strict_loads` once; later calls reuse the value or error."""
    cached = req.environ.get(_PARSED, _MISSING)
    if cached is _MISSING:
        try:
            cached = strict_loads(req.get_data(cache=True))
        except json.JSONDecodeError as error:
            cached = error
        req.environ[_PARSED] = cached
    if isinstance(cached, json.JSONDecodeError):
        raise cached
    return cached


def _reject_surrogates(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class StrictJsonParser(FlaskParser):
    """webargs' Flask parser, with strict parsing and no silent dropping of non-JSON bodies."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        # Every operation that reads a JSON body requires one: an empty body is not "{}".
        if not req.get_data(cache=True):
            abort(422, message="this request needs a JSON body")
        if not is_json_request(req):
            abort(422, message="send the body as JSON with Content-Type: application/json")
        return request_json(req)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint reading bodies with `StrictJsonParser`."""

    ARGUMENTS_PARSER = StrictJsonParser()
