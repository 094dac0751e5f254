"""POST /api/crypto/prices: upload one candle file (multipart), get a row-by-row report."""
from __future__ import annotations

import dataclasses

from flask import current_app, request
from flask_restful import Resource

from api.http.problems import BadRequest
from api.services.price_import import import_candles


class PriceUploadResource(Resource):
    def post(self):
        if request.mimetype != "multipart/form-data":
            raise BadRequest(415, "Unsupported media type", "send the file as multipart/form-data, field 'file'",
                             [{"field": "file", "message": "content type must be multipart/form-data"}])
        uploads = request.files.getlist("file")
        if len(uploads) > 1:  # the first alone would be imported, the others silently dropped
            raise BadRequest(400, "Invalid request", f"{len(uploads)} files in the field 'file': send one file per "
                             "request", [{"field": "file", "message": "send one file per request"}])
        upload = uploads[0] if uploads else None
        if upload is None or not upload.filename:
            raise BadRequest(400, "Invalid request", "no file: send it in the multipart field 'file'",
                             [{"field": "file", "message": "required"}])
        form = request.form
        report = import_candles(current_app.extensions["db_engine"], upload.stream, upload.filename,
                                form.get("symbol") or None, form.get("sheet") or None,
                                date_format=form.get("date_format") or None)
        return dataclasses.asdict(report), 201
