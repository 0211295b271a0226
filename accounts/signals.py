"""Signals accounts sends so that other parts react to users without accounts importing them."""

from django.dispatch import Signal

# Sent with `user` once a user is blocked (tokens already blacklisted): the parts that hold
# the user's live connections or work cut them off (jobs closes the user's WebSockets).
user_blocked = Signal()

# Sent with `user` while a profile is built (/api/me, the user menu); each receiver returns a
# dict of usage counts to merge into it. The part that owns the jobs answers for job counts.
profile_usage = Signal()
