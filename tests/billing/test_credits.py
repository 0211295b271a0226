"""Credits: off by default; a hold at submit (402 when short), settled or released at the end,
an append-only ledger with exact decimals, admin top-ups, never a negative balance."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from billing import ledger
from billing.models import BillingSettings, LedgerEntry, WorkflowPrice
from jobs import lifecycle, steps
from jobs.models import Job
from tests.conftest import PASSWORD, Api, make_user, token_for
from tests.factories import make_node, make_workflow

BODY = {"workflow": "tiny", "inputs": {}}


@pytest.fixture(autouse=True)
def _fresh_billing_settings():
    BillingSettings._cached = None
    yield
    BillingSettings._cached = None


def billing_on(per_job="1", per_gpu_second="0.01", max_gpu_seconds=100) -> None:
    BillingSettings.objects.create(enabled=True, currency="credits")
    WorkflowPrice.objects.create(
        workflow_slug="tiny",
        per_job=Decimal(per_job),
        per_gpu_second=Decimal(per_gpu_second),
        max_gpu_seconds=max_gpu_seconds,
    )


def run_to_end(job_id, status, gpu_seconds=None):
    node = make_node()
    lifecycle.claim({job_id: (node.pk, "7c9e6679-7425-40de-944b-e07fc1f90ae7", "c")}, runner_id="r", now=timezone.now())
    steps.finish_and_present(steps.load_job(job_id), status=status, message="", gpu_seconds=gpu_seconds)


@pytest.mark.django_db
def test_billing_is_off_by_default(alice_api):
    make_workflow("tiny")
    WorkflowPrice.objects.create(workflow_slug="tiny", per_job=Decimal("5"))
    assert alice_api.post("/api/jobs", BODY).status_code == 201
    assert not LedgerEntry.objects.exists()
    assert alice_api.get("/api/me/balance").json()["enabled"] is False


@pytest.mark.django_db
def test_a_submit_holds_its_price_and_is_refused_with_402_when_short(alice_api, alice):
    make_workflow("tiny")
    billing_on()  # holds 1 + 0.01 × 100 = 2
    ledger.top_up(user=alice, amount="5")
    assert alice_api.post("/api/jobs", BODY).status_code == 201
    assert alice_api.post("/api/jobs", BODY).status_code == 201
    refused = alice_api.post("/api/jobs", BODY)
    assert refused.status_code == 402
    body = refused.json()
    assert (body["balance"], body["price"], body["currency"]) == ("1.0000", "2.0000", "credits")
    assert body["detail"].startswith("balance: 1.0000 credits is less than")
    assert Job.objects.count() == 2
    balance = alice_api.get("/api/me/balance").json()
    assert (balance["balance"], balance["held"]) == ("1.0000", "4.0000")
    assert [e["kind"] for e in balance["entries"]] == ["HOLD", "HOLD", "TOPUP"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "gpu_seconds", "kind", "back", "final"),
    [
        ("DONE", 30.0, "SETTLE", "0.7000", "8.7000"),  # costs 1 + 0.3
        ("DONE", 500.0, "SETTLE", "0.0000", "8.0000"),  # never more than the hold
        ("ERROR", 12.0, "RELEASE", "2.0000", "10.0000"),
        ("CANCELLED", 3.0, "SETTLE", "0.9700", "8.9700"),  # cancelled while running: 1.03 is paid
    ],
)
def test_the_end_of_a_job_settles_or_releases_its_hold(
    alice_api, alice, status, gpu_seconds, kind, back, final, django_capture_on_commit_callbacks
):
    make_workflow("tiny")
    billing_on()
    ledger.top_up(user=alice, amount="10")
    job = alice_api.post("/api/jobs", BODY).json()
    with django_capture_on_commit_callbacks(execute=True):
        run_to_end(job["id"], status, gpu_seconds)
    entry = LedgerEntry.objects.get(job_id=job["id"], kind__in=["SETTLE", "RELEASE"])
    assert (entry.kind, str(entry.amount)) == (kind, back)
    assert str(ledger.balance(alice.pk)) == final and ledger.held(alice.pk) == 0
    assert ledger.settle(job["id"]) is None  # once only
    assert LedgerEntry.objects.filter(job_id=job["id"]).count() == 2


@pytest.mark.django_db
def test_a_cancel_before_start_releases_the_hold(alice_api, alice, django_capture_on_commit_callbacks):
    make_workflow("tiny")
    billing_on()
    ledger.top_up(user=alice, amount="2")
    job = alice_api.post("/api/jobs", BODY).json()
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(f"/api/jobs/{job['id']}/cancel")
    assert LedgerEntry.objects.get(job_id=job["id"], kind="RELEASE").amount == Decimal("2")
    assert ledger.balance(alice.pk) == Decimal("2")


@pytest.mark.django_db
def test_holds_of_jobs_that_ended_while_billing_was_off_are_settled_by_the_sweep(alice_api, alice):
    make_workflow("tiny")
    billing_on()
    ledger.top_up(user=alice, amount="5")
    job = alice_api.post("/api/jobs", BODY).json()
    BillingSettings.objects.update(enabled=False)
    BillingSettings._cached = None
    run_to_end(job["id"], "DONE", 10.0)  # (on_commit never runs here: as if nobody settled it)
    assert ledger.held(alice.pk) == Decimal("2")
    assert ledger.settle_ended_jobs() == 1 and ledger.settle_ended_jobs() == 0
    assert ledger.balance(alice.pk) == Decimal("3.9") and ledger.held(alice.pk) == 0


@pytest.mark.django_db
def test_amounts_are_exact_decimals(alice_api, alice, django_capture_on_commit_callbacks):
    make_workflow("tiny")
    billing_on(per_job="0.1", per_gpu_second="0.0001", max_gpu_seconds=3)
    ledger.top_up(user=alice, amount="0.3009")
    for _ in range(3):
        response = alice_api.post("/api/jobs", BODY)
        assert response.status_code == 201, response.content
        job = response.json()
        with django_capture_on_commit_callbacks(execute=True):
            run_to_end(job["id"], "DONE", 1.0)
    assert ledger.balance(alice.pk) == Decimal("0.0006")  # 0.3009 − 3 × (0.1 + 0.0001 × 1), exactly


@pytest.mark.django_db
def test_adjustments_need_a_reason_and_never_go_below_zero(alice, admin_user):
    ledger.top_up(user=alice, amount="3")
    with pytest.raises(Exception, match="reason"):
        ledger.adjust(user=alice, amount="-1", reason=" ", actor=admin_user)
    with pytest.raises(Exception, match="below 0"):
        ledger.adjust(user=alice, amount="-3.0001", reason="refund", actor=admin_user)
    ledger.adjust(user=alice, amount="-3", reason="chargeback", actor=admin_user)
    assert ledger.balance(alice.pk) == 0


@pytest.mark.django_db
def test_admins_top_up_in_django_admin_and_entries_stay_as_written(alice, admin_user):
    site = Client()
    site.login(username="root", password=PASSWORD)
    added = site.post(
        "/admin/billing/ledgerentry/add/", {"user": alice.pk, "kind": "TOPUP", "amount": "12.5", "reason": "invoice 7"}
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.created_by) == ("TOPUP", Decimal("12.5"), admin_user)
    refused = site.post(
        "/admin/billing/ledgerentry/add/", {"user": alice.pk, "kind": "ADJUST", "amount": "-20", "reason": "x"}
    )
    assert refused.status_code == 200 and LedgerEntry.objects.count() == 1
    site.post(
        f"/admin/billing/ledgerentry/{entry.pk}/change/",
        {"user": alice.pk, "kind": "TOPUP", "amount": "999", "reason": "x"},
    )
    entry.refresh_from_db()
    assert entry.amount == Decimal("12.5")
    assert site.post(f"/admin/billing/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db
def test_the_credits_page_shows_balance_and_history(alice):
    BillingSettings.objects.create(enabled=True, currency="EUR")
    ledger.top_up(user=alice, amount="4.25", reason="welcome")
    site = Client()
    site.login(username="alice", password=PASSWORD)
    html = site.get("/credits/").content.decode()
    assert "4.2500 EUR" in html and "welcome" in html and 'id="billing-off"' not in html


@pytest.mark.django_db(transaction=True)
def test_no_overdraft_under_16_concurrent_submits():
    """Run with DATABASE_URL=postgres://… for row locks: 16 submits at once against 5 jobs' worth."""
    alice = make_user("alice")
    make_workflow("tiny")
    billing_on()
    ledger.top_up(user=alice, amount="10")  # 5 holds of 2
    token = token_for(alice)
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def submit():
        try:
            api = Api(token)
            barrier.wait()
            statuses.append(api.post("/api/jobs", BODY).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [201] * 5 + [402] * 11
    assert ledger.balance(alice.pk) == Decimal("0") and Job.objects.count() == 5
    assert LedgerEntry.objects.filter(kind="HOLD").count() == 5


@pytest.mark.django_db
def test_the_form_says_when_the_balance_is_short(alice):
    make_workflow("tiny")
    billing_on()
    site = Client()
    site.login(username="alice", password=PASSWORD)
    page = site.post("/jobs/new/tiny/", {})
    assert "is less than this job&#x27;s price" in page.content.decode()  # (a plain POST answers 429, as for quotas)
    assert not Job.objects.exists()
