"""DRF authentication for the API token, refusing keys that cannot be one before any query."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from .selectors import token_key_is_wellformed


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication (``Authorization: Token <key>``), with the key checked first."""

    def authenticate_credentials(self, key):
        if not token_key_is_wellformed(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
