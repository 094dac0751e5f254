"""flask-restful's Api with one error path and orjson output.

Stock flask-restful turns unknown exceptions into bare 500s on its own routes
(and re-raises them when TESTING is on); overriding handle_error sends every
error through `problem_for` instead, the same in tests and production.
"""
from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask_restful import Api

from api.http.problems import problem_for

_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def json_bytes(data: Any) -> bytes:
    """The API's JSON encoding: orjson, fast for big batches, NaN/Infinity written as null."""
    return orjson.dumps(data, option=_ORJSON_OPTS)


def output_json(data: Any, code: int, headers: dict[str, str] | None = None) -> Response:
    """flask-restful representation for application/json."""
    return Response(json_bytes(data), status=code, mimetype="application/json", headers=headers)


class ProblemApi(Api):
    """Api whose errors all answer application/problem+json."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.representations = {"application/json": output_json}

    def handle_error(self, e: Exception) -> Response:  # noqa: D102 - see class docstring
        return problem_for(e)
