"""Salon's own 404 and 500 pages, also under DEBUG (make run), unless a developer asks for
Django's technical pages (SALON_DEBUG_ERROR_PAGES)."""

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path

pytestmark = pytest.mark.django_db


def _fail(request):
    raise RuntimeError("boom: a secret in the traceback")


def _api_not_found(request):
    return HttpResponse('{"detail": "no"}', status=404, content_type="application/json")


# A URLconf with a view that fails, beside the real ones.
urlpatterns = [
    path("test-fail/", _fail),
    path("test-api-404/", _api_not_found),
    path("", include("config.urls")),
]
# As config.urls has them (Django looks the handlers up on the root URLconf).
handler404 = "config.error_pages.page_not_found"
handler500 = "config.error_pages.server_error"


@pytest.fixture
def debug_site(settings):
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    return settings


@pytest.mark.parametrize("url", ["/spaces/999999/", "/no-such-page/"])
def test_a_missing_page_under_debug_is_ours_not_djangos(debug_site, url):
    """A missing space (the view's 404) and a URL nothing matches: our page, status 404."""
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.create_user(username="mia"))
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in body and "Go to the home page" in body
    assert "URLconf" not in body and "Django" not in body


def test_a_view_that_returns_its_own_404_keeps_it(debug_site):
    """An API's own 404 response (JSON) is not replaced."""
    response = Client().get("/test-api-404/")
    assert response.status_code == 404 and response.json() == {"detail": "no"}


def test_a_failure_under_debug_is_our_500_and_the_traceback_goes_to_the_log(debug_site, caplog):
    response = Client(raise_request_exception=False).get("/test-fail/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in body
    assert "secret" not in body and "Traceback" not in body
    assert any("boom" in str(record.exc_info) for record in caplog.records if record.exc_info)


def test_developers_still_get_djangos_pages_when_they_ask(debug_site):
    debug_site.SALON_DEBUG_ERROR_PAGES = True
    assert "URLconf" in Client().get("/no-such-page/").content.decode()
    body = Client(raise_request_exception=False).get("/test-fail/").content.decode()
    assert "boom: a secret in the traceback" in body


def test_without_debug_the_handlers_serve_the_same_pages(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__
    response = Client().get("/no-such-page/")
    assert response.status_code == 404 and "<h1>Not found</h1>" in response.content.decode()
    response = Client(raise_request_exception=False).get("/test-fail/")
    assert response.status_code == 500 and "Something went wrong" in response.content.decode()


def test_an_error_page_that_cannot_render_falls_back_to_a_plain_one(settings, caplog):
    """Production without collectstatic's manifest (or a broken template): the member still
    gets a 404 or 500 page, not a second failure, and the cause goes to the log."""
    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    settings.STATIC_ROOT = "/nonexistent-static-root"
    response = Client().get("/no-such-page/")
    assert response.status_code == 404 and "<h1>Not found</h1>" in response.content.decode()
    response = Client(raise_request_exception=False).get("/test-fail/")
    assert response.status_code == 500 and "Something went wrong" in response.content.decode()
    assert "failed to render" in caplog.text
