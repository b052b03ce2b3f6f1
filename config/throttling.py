"""DRF's throttles keyed on the client address of ``config.client_address``, and the API's
scoped rate limits for the HTML forms that do the same things.

Every throttle Salon uses comes from here: DRF's own classes key anonymous requests on
``X-Forwarded-For`` as the client sent it, so a new header value per request was a new budget.

A form that posts a voice tweet, sends a voice message, files a report, creates an invitation
or joins the waitlist does what an API endpoint throttled by ``ScopedRateThrottle`` does. Without
this, the form was a way around the limit. Both count against the same budget (DRF's cache key
for the scope and the member, or the client's address when anonymous).
"""

from __future__ import annotations

import functools
import ipaddress
from types import SimpleNamespace

from allauth import app_settings as allauth_settings
from django.shortcuts import render
from rest_framework import throttling

from config.client_address import request_client_address


def throttle_ident(request) -> str:
    """What an anonymous request is counted by: its client address, or for IPv6 the network
    allauth's limits count by (a /64 by default), since one subscriber holds a whole /64."""
    address = request_client_address(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        prefix = allauth_settings.RATE_LIMIT_IPV6_PREFIX
        return str(ipaddress.IPv6Network(f"{parsed}/{prefix}", strict=False).network_address)
    return address


class ClientAddressThrottle:
    """Counts anonymous requests by ``throttle_ident`` (members are counted by their id)."""

    def get_ident(self, request) -> str:
        return throttle_ident(request)


class AnonRateThrottle(ClientAddressThrottle, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(ClientAddressThrottle, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(ClientAddressThrottle, throttling.ScopedRateThrottle):
    pass


def throttled_post(scope: str):
    """Answer a POST over the ``scope`` rate (REST_FRAMEWORK's DEFAULT_THROTTLE_RATES) with 429.

    Place it under ``login_required``, so the member (not their address) is counted.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST":
                throttle = ScopedRateThrottle()
                if not throttle.allow_request(request, SimpleNamespace(throttle_scope=scope)):
                    wait = throttle.wait()
                    response = render(
                        request,
                        "rate_limited.html",
                        {"minutes": max(1, round((wait or 60) / 60))},
                        status=429,
                    )
                    if wait is not None:
                        response["Retry-After"] = str(max(1, round(wait)))
                    return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
