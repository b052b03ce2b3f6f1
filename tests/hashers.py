"""A password hasher for the test process only: PBKDF2 at one iteration.

Django's default PBKDF2 costs about 0.3 s of CPU per password (its point), and the suite makes
members by the thousand: hashing was a fifth of its time. The hash keeps Django's own format
(``pbkdf2_sha256$1$salt$hash``), so a server the tests start, which runs the real settings,
checks these passwords with its stock hasher (and upgrades one at its first login).
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class OneRoundPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1
