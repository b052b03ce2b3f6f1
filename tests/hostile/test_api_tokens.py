"""Whatever a client puts in the Authorization header, the API answers 401, never 500.

Token login, logout and suspension are pinned in ``tests/accounts/test_api.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

# Header values arrive as bytes, which Django's ASGI handler decodes as latin-1.
latin1 = st.text(st.characters(max_codepoint=255), max_size=80)
header_values = st.one_of(
    st.builds("Token {}".format, latin1),
    st.builds("Token {}".format, st.from_regex(r"[0-9a-f]{40}", fullmatch=True)),
    latin1,
)


@settings(max_examples=40, deadline=None)
@given(value=header_values)
@example(value="Token abc\x00def")  # PostgreSQL refused the NUL byte with a 500
@example(value="Token " + "\x00" * 40)
@example(value="Token " + "a" * 5000)
@example(value="Token a b")
def test_any_authorization_header_gets_a_clean_refusal(value):
    """An unknown, malformed or hostile token, or any other header, is refused with 401 and
    the scheme to use; the request never reaches a 500."""
    response = APIClient().get("/api/v1/spaces/", HTTP_AUTHORIZATION=value)
    assert response.status_code == 401, (response.status_code, response.content[:200])
    assert response["WWW-Authenticate"] == "Token"
