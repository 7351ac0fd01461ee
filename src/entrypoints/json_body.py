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
# Objects and arrays nested in one another. A request needs about 70 at most (the deepest
# allowed filter inside a batch search); much deeper, Python's parser and encoder recurse
# past the recursion limit.
MAX_JSON_DEPTH = 100
TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def strict_loads(raw: bytes | str) -> Any:
    """Parse JSON, raising JSONDecodeError for anything that is not clean UTF-8 JSON.

    JSON nested deeper than MAX_JSON_DEPTH is refused with `TOO_DEEP` as the error's `msg`.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text)
        _reject_unusable(value)
        return value
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError(TOO_DEEP, "?", 0) from None
    except (UnicodeError, ValueError) as error:
        # Lone surrogates ("\ud800"), integers over Python's 4300-digit limit: the body is not
        # usable JSON.
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


def _reject_unusable(value: Any) -> None:
    """Check every string encodes as UTF-8, and the nesting, without recursing."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise json.JSONDecodeError(TOO_DEEP, "?", 0)
            inner = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((each, depth + 1) for each in inner)


class StrictJsonParser(FlaskParser):
    """webargs' Flask parser, with strict parsing and no silent dropping of non-JSON bodies."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        # Every operation that reads a JSON body requires one: an empty body is not "{}".
        if not req.get_data(cache=True):
            abort(422, message="this request needs a JSON body")
        if not is_json_request(req):
            abort(422, message="send the body as JSON with Content-Type: application/json")
        try:
            return request_json(req)
        except json.JSONDecodeError as error:
            if error.msg == TOO_DEEP:
                abort(422, message=f"malformed request: {TOO_DEEP}", errors={"json": [TOO_DEEP]})
            raise


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint reading bodies with `StrictJsonParser`."""

    ARGUMENTS_PARSER = StrictJsonParser()
