"""The OpenAPI document declares each operation's error answers (issue 20 item 17), for every
operation, present and future; the server keeps to what the document says."""

from __future__ import annotations

import re

import pytest
from ninja import Router

from accounts.auth import JWTAuth
from core.openapi import ErrorOut, ErrorsDocumentedAPI, error_statuses, list_of_pattern, one_of_pattern

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


@pytest.fixture(scope="module")
def document() -> dict:
    from comfyportal.api import api

    return api.get_openapi_schema()


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def declared(operation) -> set[int]:
    return {int(status) for status in operation["responses"]}


def test_every_error_answer_is_declared_with_the_error_schema(document):
    assert "ErrorOut" in document["components"]["schemas"]
    for name, operation in operations(document):
        statuses = declared(operation)
        assert 400 in statuses, name
        if operation.get("security"):
            assert {401, 403, 429} <= statuses, name
        if "{" in name:
            assert 404 in statuses, name
        if "requestBody" in operation:
            assert {413, 422} <= statuses, name
        if operation.get("parameters"):
            assert 422 in statuses, name
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == ERROR_REF, (name, status)
            if int(status) == 429:
                assert "Retry-After" in response["headers"], name


def test_operations_declare_their_own_errors(document):
    paths = document["paths"]
    for path in ("/api/auth/token", "/api/auth/refresh"):
        # No token needed, yet wrong credentials, a blocked account and the login throttle answer.
        assert {401, 403, 429} <= declared(paths[path]["post"]), path
    user = paths["/api/admin/users/{user_id}"]
    assert 409 in declared(user["patch"]) and 409 in declared(user["delete"])  # the last admin
    assert 409 in declared(paths["/api/admin/users"]["post"])  # the username is taken
    assert 404 in declared(paths["/api/jobs"]["post"])  # no active workflow of that slug
    assert 409 in declared(paths["/api/jobs/{job_id}/cancel"]["post"])
    # Nothing beyond what the operation can give: the Spec's schema is open to all and reads nothing.
    assert declared(paths["/api/workflow-spec/v1.json"]["get"]) == {200, 400}
    assert 404 not in declared(paths["/api/me"]["get"]) and 422 not in declared(paths["/api/me"]["get"])


def test_an_operation_added_later_gets_its_errors_without_extra_work():
    api = ErrorsDocumentedAPI(auth=JWTAuth(), urls_namespace="later")
    router = Router()

    @router.patch("/things/{thing_id}", response={200: ErrorOut})
    def patch_thing(request, thing_id: int, payload: ErrorOut):
        return payload

    @router.get("/open", auth=None, response={200: ErrorOut, 429: ErrorOut})
    def open_thing(request):
        return {"detail": "ok"}

    api.add_router("/", router)
    paths = api.get_openapi_schema(path_prefix="")["paths"]
    assert declared(paths["/things/{thing_id}"]["patch"]) == {200, 400, 401, 403, 404, 413, 422, 429}
    assert declared(paths["/open"]["get"]) == {200, 400, 429}


def test_error_statuses_follow_auth_parameters_and_body():
    from comfyportal.api import api

    found = {}
    for router in api._get_bound_routers():
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                found[operation.view_func.__name__] = error_statuses(operation)
    assert found["me"] == {400, 401, 403, 429}
    assert found["spec_schema"] == {400}
    assert found["update_user"] == {400, 401, 403, 404, 413, 422, 429}


@pytest.mark.parametrize(
    "value,ok",
    [
        ("", True),
        ("QUEUED", True),
        ("queued, Running", True),
        ("done,,error,", True),
        ("QUEUEDRUNNING", False),
        ("bogus", False),
        ("\tDONE", False),
    ],
)
def test_the_status_filter_pattern_is_what_the_server_reads(value, ok):
    assert bool(re.fullmatch(list_of_pattern(["QUEUED", "RUNNING", "DONE", "ERROR"]), value)) is ok


def test_one_of_pattern_is_case_insensitive_and_exact():
    pattern = one_of_pattern(["IMAGE", "MASK"])
    assert re.fullmatch(pattern, "image") and re.fullmatch(pattern, "Mask")
    assert not re.fullmatch(pattern, "images") and not re.fullmatch(pattern, "")


@pytest.mark.django_db
def test_the_server_keeps_to_the_declared_filters_and_kinds(alice_api):
    assert alice_api.get("/api/jobs", status="queued, running").status_code == 200
    response = alice_api.get("/api/jobs", status="bogus")
    assert response.status_code == 422 and "status" in response.json()["errors"]
    response = alice_api.multipart("/api/uploads", {"kind": "drawing", "file": _png()})
    assert response.status_code == 422
    assert response.json()["errors"]["kind"] == "must be one of image, mask, video, audio (any letter case)"
    assert alice_api.multipart("/api/uploads", {"kind": "MASK", "file": _png()}).status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[]", "[null, null]", '"x"', "5", "null"])
def test_a_json_body_that_is_not_an_object_is_refused(admin_api, alice, body):
    """ninja would read it as an empty object: a PATCH answered 200 and changed nothing."""
    response = admin_api.client.patch(
        f"/api/admin/users/{alice.pk}", body, content_type="application/json", **admin_api._headers()
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "body: must be a JSON object."}


def _png():
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.pages.conftest import png_bytes

    return SimpleUploadedFile("p.png", png_bytes(), content_type="image/png")
