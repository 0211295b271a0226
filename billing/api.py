"""GET /api/me/balance: the caller's credits and the latest ledger entries."""

from __future__ import annotations

from datetime import datetime

from ninja import Router, Schema

from billing import ledger

router = Router(tags=["billing"])


class LedgerEntryOut(Schema):
    id: int
    kind: str
    amount: str
    job_id: str | None
    reason: str
    created_at: datetime


class BalanceOut(Schema):
    enabled: bool
    currency: str
    balance: str
    held: str
    entries: list[LedgerEntryOut]


@router.get("/me/balance", response=BalanceOut, summary="My balance, what my jobs hold, and my latest entries")
def my_balance(request):
    return ledger.summary(request.user)
