"""The API's scoped rate limits, for the HTML forms that do the same things.

A form that posts a voice tweet, sends a voice message, files a report, creates an invitation
or joins the waitlist does what an API endpoint throttled by ``ScopedRateThrottle`` does. Without
this, the form was a way around the limit. Both count against the same budget (DRF's cache key
for the scope and the member, or the client's address when anonymous).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from django.shortcuts import render
from rest_framework.throttling import ScopedRateThrottle


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
