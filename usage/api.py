"""GET /api/usage: what jobs consumed (own; admins: anyone's, or everyone's), as JSON or CSV."""

from __future__ import annotations

from typing import Literal

from django.http import HttpResponse
from ninja import Query, Router, Schema
from pydantic import ConfigDict, Field

from usage import reports

router = Router(tags=["usage"])


class UsageParams(Schema):
    model_config = ConfigDict(populate_by_name=True)

    start: str = Field("", alias="from", description="First day, YYYY-MM-DD (default: 29 days before `to`).")
    end: str = Field("", alias="to", description="Last day, YYYY-MM-DD, included (default: today).")
    group_by: Literal["day", "workflow", "user"] = "day"
    user: str = Field("", max_length=150, description="Admins: a username, or `all`. Default: yourself.")
    format: Literal["json", "csv"] = "json"


class UsageRowOut(Schema):
    key: str
    jobs: int
    succeeded: int
    failed: int
    cancelled: int
    gpu_seconds: float = Field(description="Billed: the GPU server's execution time of the jobs that succeeded.")
    unbilled_gpu_seconds: float = Field(description="Execution time of jobs that failed or were cancelled.")
    failed_attempts: int = Field(description="Attempts a GPU server failed (the job was requeued or given up).")
    avg_queue_seconds: float | None
    outputs: int
    output_bytes: int


class UsageTotalsOut(Schema):
    jobs: int
    succeeded: int
    failed: int
    cancelled: int
    gpu_seconds: float
    unbilled_gpu_seconds: float
    failed_attempts: int
    outputs: int
    output_bytes: int


class UsageOut(Schema):
    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    group_by: str
    rows: list[UsageRowOut]
    totals: UsageTotalsOut


@router.get(
    "/usage",
    response=UsageOut,
    by_alias=True,
    summary="Usage by day, workflow or user (JSON or CSV)",
    # format=csv answers text/csv: the document says so, for clients and schemathesis alike.
    # (an int status: merged into ninja's own 200, which a "200" key would duplicate)
    openapi_extra={"responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}},
)
def usage(request, params: Query[UsageParams]):
    query = reports.parse_query(
        request.user, start=params.start, end=params.end, group_by=params.group_by, user=params.user
    )
    data = reports.report(query)
    if params.format == "csv":
        return csv_response(data)
    return data


def csv_response(data: dict) -> HttpResponse:
    response = HttpResponse(reports.as_csv(data), content_type="text/csv; charset=utf-8")
    name = f"usage-{data['from']}-{data['to']}-by-{data['group_by']}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
