"""Salon's URLs plus the same-run baseline of bench/bench_pages.py: a plain Django view that
returns a constant, through the same middleware, server and process as the pages."""

from django.http import HttpResponse
from django.urls import include, path


def constant(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/constant", constant), path("", include("config.urls"))]
