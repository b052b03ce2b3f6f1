import os

import pytest

from tests import services


def pytest_configure(config):
    # Before pytest-django's own pytest_configure (trylast): settings must see the service URLs.
    services.start()
    # Tasks run where they are queued, synchronously, so tests see their effects; tests that
    # need a real worker start one in a subprocess.
    os.environ["SALON_CELERY_EAGER"] = "1"
    os.environ["SALON_TASKS_SYNCHRONOUS"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    settings.DATABASES  # noqa: B018 - load the settings now, so pytest-django sets Django up


def pytest_unconfigure(config):
    services.stop()


def pytest_report_header(config):
    return services.report_lines()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Every test writes uploads under its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def live_server_process(transactional_db, tmp_path):
    """Start real daphne servers (``manage.py serve``) that share the test database and Redis.

    Call it to start one; every server started is stopped after the test.
    """
    from django.db import connection

    from tests.live import ServerProcess

    servers: list[ServerProcess] = []

    def start(**extra_env) -> ServerProcess:
        server = ServerProcess(
            database_name=connection.settings_dict["NAME"], log_dir=tmp_path, extra_env=extra_env
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_media_plane():
    """Each test's sockets get a media plane on that test's own event loop."""
    yield
    from spaces.media import discard_media_plane

    discard_media_plane()
