import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/password/reset/"])
def test_public_pages_render_with_navigation(client, path):
    """The home page and allauth's pages render inside Salon's layout."""
    response = client.get(path)

    assert response.status_code == 200
    assert b'class="site-header"' in response.content


def test_admin_login_page_is_served(client):
    """The Django admin is mounted and asks anonymous visitors to log in."""
    response = client.get("/admin/", follow=True)

    assert response.status_code == 200
    assert b"Log in" in response.content


def test_api_docs_are_served_without_a_cdn(client):
    """Swagger UI loads its assets from Salon itself, and the schema is OpenAPI 3."""
    docs = client.get("/api/docs/")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert docs.status_code == 200
    assert b"cdn." not in docs.content and b"unpkg" not in docs.content
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")


def test_static_files_are_served_by_whitenoise(client):
    """The stylesheet comes from Salon's own static files, not a CDN."""
    response = client.get("/static/css/salon.css")

    assert response.status_code == 200
    assert b"--accent" in b"".join(response.streaming_content)


def test_seed_demo_is_idempotent(capsys):
    """Running seed_demo twice leaves the same members and prints the demo logins."""
    call_command("seed_demo", force=True)  # the test runner turns DEBUG off
    users_after_first = set(get_user_model().objects.values_list("username", "pk"))
    call_command("seed_demo", force=True)

    assert set(get_user_model().objects.values_list("username", "pk")) == users_after_first
    assert {"admin", "alice", "bob", "carol"} <= {name for name, _ in users_after_first}
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.check_password("salon-demo")
    assert "alice / salon-demo" in capsys.readouterr().out


def test_seed_demo_refuses_to_run_without_debug(settings):
    """Known demo passwords never land in a production database by accident."""
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo")
    assert not get_user_model().objects.filter(username="alice").exists()
