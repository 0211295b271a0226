"""Error answers stay small however many problems a request has (the first 20, then how many more)."""

from __future__ import annotations

import json

from django.test import RequestFactory
from ninja.errors import ValidationError

from comfyportal.api import invalid_request
from core.errors import InvalidInput, field_errors_detail


def test_field_errors_detail_names_20_fields_and_counts_the_rest():
    errors = {f"f{i}": "is not a field of this workflow" for i in range(1000)}
    detail = field_errors_detail(errors)
    assert detail.startswith("f0: is not a field of this workflow; f1: ")
    assert detail.count("is not a field") == 20
    assert detail.endswith("; and 980 more")
    assert field_errors_detail({"a": "x", "b": "y"}) == "a: x; b: y"


def test_a_domain_error_carries_at_most_20_field_errors():
    errors = {f"f{i}": "bad" for i in range(1000)}
    assert len(InvalidInput(field_errors_detail(errors), errors=errors).errors) == 20


def test_request_validation_errors_are_capped():
    request = RequestFactory().post("/api/jobs")
    exc = ValidationError([{"loc": ("body", "payload", "items", i), "msg": "bad"} for i in range(1000)])
    response = invalid_request(request, exc)
    body = json.loads(response.content)
    assert response.status_code == 422 and len(response.content) < 4000
    assert len(body["errors"]) == 20 and body["detail"].endswith("; and 980 more")
