"""Salon's own 404 and 500 pages, also under DEBUG.

``make run`` runs with DEBUG on (static files from the source tree, autoreload), and members
use it: Django would show them its technical 404 page (the URL patterns) and 500 page (a
traceback with settings). Unless SALON_DEBUG_ERROR_PAGES is set (a developer who wants them),
members get these pages instead; the traceback still goes to the log (django.request), as in
production. Without DEBUG, Django renders them through ``handler404``/``handler500`` anyway.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.template import loader
from django.urls import Resolver404
from django.views.debug import ExceptionReporter

logger = logging.getLogger(__name__)


# An error page must not fail in its turn: if its template cannot render (a static file
# missing from collectstatic's manifest, a broken template), the member gets this instead.
_PLAIN = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} · Salon</title>'
    '</head><body><h1>{title}</h1><p><a href="/">Back to Salon</a></p></body></html>'
)


def _render(template: str, status: int, title: str, request: HttpRequest | None = None):
    try:
        body = loader.render_to_string(template, request=request)
    except Exception:
        logger.exception("the %s page failed to render; sent a plain one", status)
        body = _PLAIN.format(title=title)
    return HttpResponse(body, status=status)


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """``handler404``: what is missing, and the way home."""
    return _render("404.html", 404, "Not found", request)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: no context, no query (the database may be what failed)."""
    return _render("500.html", 500, "Something went wrong")


def _members_see_ours() -> bool:
    return settings.DEBUG and not settings.SALON_DEBUG_ERROR_PAGES


class ErrorPagesMiddleware:
    """Under DEBUG, a missing page (no URL matched, or a view raised Http404) gets our 404
    page. Last in MIDDLEWARE: CommonMiddleware still redirects /path to /path/ first."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # No URL matched (Resolver404 never reaches process_exception): Django's technical
        # page; a view's own 404 (an API's JSON) has a resolver_match and stays as it is.
        if _members_see_ours() and response.status_code == 404 and request.resolver_match is None:
            return page_not_found(request, Resolver404())
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        if _members_see_ours() and isinstance(exception, Http404):
            return page_not_found(request, exception)
        return None


class MemberExceptionReporter(ExceptionReporter):
    """DEFAULT_EXCEPTION_REPORTER under DEBUG: Django's 500 response shows our page instead
    of the traceback (which Django logs all the same), unless SALON_DEBUG_ERROR_PAGES."""

    def get_traceback_html(self) -> str:
        if not _members_see_ours():
            return super().get_traceback_html()
        return loader.render_to_string("500.html")

    def get_traceback_text(self) -> str:
        if not _members_see_ours():
            return super().get_traceback_text()
        return "Something went wrong on our side. Please try again in a moment.\n"
