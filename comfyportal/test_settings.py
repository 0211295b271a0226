"""Settings for pytest: the real settings, with fast password hashing and unit-test wiring.

Unit tests use the in-memory channel layer and django-q2's sync mode; the integration tests
start real processes that read the plain settings through the environment.
"""

from __future__ import annotations

from comfyportal.settings import *  # noqa: F403

PASSWORD_HASHERS = [
    "comfyportal.test_hashers.FastBCryptSHA256PasswordHasher",  # bcrypt, stored as bcrypt_sha256$…
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
API_RATE_LIMIT = 0
LOGIN_RATE_LIMIT = 0
LOGIN_USER_RATE_LIMIT = 0

# One SQLite test database per pytest process, so that parallel runs never share a file.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    import os as _os

    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{_os.getpid()}.sqlite3")}  # noqa: F405

# No connection pool in the test process itself: a pool keeps a connection open after the
# tests, and the test database could then not be dropped. (The processes that integration
# tests start use the production settings, pool included.)
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)  # noqa: F405
