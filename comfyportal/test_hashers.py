"""bcrypt with the fewest rounds, for tests only: the same algorithm and hash format, fast enough for a test suite."""

from django.contrib.auth.hashers import BCryptSHA256PasswordHasher


class FastBCryptSHA256PasswordHasher(BCryptSHA256PasswordHasher):
    rounds = 4
