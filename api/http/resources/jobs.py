"""POST /api/jobs (queue a long request), GET /api/jobs (newest first), GET /api/jobs/{id}, POST .../cancel."""
from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_restful import Resource

from api.http.requests import json_body
from api.http.schemas import JobRequest
from api.services.jobs import Jobs, job_view


def _jobs() -> Jobs:
    return current_app.extensions["jobs"]


def _located(job: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    return job_view(job), 202, {"Location": f"/api/jobs/{job['job_id']}"}


class JobListResource(Resource):
    def post(self):
        req = JobRequest.model_validate(json_body())
        return _located(_jobs().submit(req.kind, req.request))

    def get(self):
        return _jobs().page(request.args.get("limit", 50), request.args.get("cursor")), 200


class JobResource(Resource):
    def get(self, job_id: str):
        return job_view(_jobs().get(job_id)), 200


class JobCancelResource(Resource):
    def post(self, job_id: str):
        return _located(_jobs().cancel(job_id))
