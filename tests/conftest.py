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
    # Connections of the threads consumers run database calls on would outlive each test and
    # keep the test database from being dropped at the end.
    os.environ["SALON_DB_CONN_MAX_AGE"] = "0"
    # Transcribing every test's voice tweets would cost seconds each: captions are off unless
    # a test turns them on (tests/voicetweets/test_transcription.py).
    os.environ.setdefault("SALON_TRANSCRIBE_MODEL", "off")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    settings.DATABASES  # noqa: B018 - load the settings now, so pytest-django sets Django up
    # Members are made by the thousand: hash their passwords cheaply (tests/hashers.py).
    settings.PASSWORD_HASHERS = [
        "tests.hashers.OneRoundPBKDF2PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]


def pytest_unconfigure(config):
    services.stop()


def pytest_report_header(config):
    return services.report_lines()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Every test writes uploads under its own temporary folders, public and private."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SALON_PRIVATE_MEDIA_ROOT = tmp_path / "private"


def _is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a transactional test's fixtures (and so its flush), no member may be left behind.

    A flush that failed would otherwise leave rows that break every later test with unrelated
    duplicate-key errors. This names the test that leaked, with whatever else held the
    database, and cleans up so the rest of the suite runs on an empty database.
    """
    result = yield
    # After the last test the session's fixtures, the test database included, are gone too.
    if nextitem is not None and _is_transactional(item):
        _check_flushed(item)
    return result


def _is_transactional(item) -> bool:
    marker = item.get_closest_marker("django_db")
    return "transactional_db" in getattr(item, "fixturenames", ()) or bool(
        marker and marker.kwargs.get("transaction")
    )


def _check_flushed(item) -> None:
    from django.core.management import call_command
    from django.db import connection
    from pytest_django.plugin import blocking_manager_key

    with item.config.stash[blocking_manager_key].unblock():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM accounts_user")
            (left,) = cursor.fetchone()
            if not left:
                return
            cursor.execute(
                "SELECT pid, state, left(query, 200) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            others = cursor.fetchall()
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        call_command("flush", interactive=False, verbosity=0)
        connection.close()
    pytest.fail(f"{left} member(s) outlived the test's flush; other sessions: {others}")


@pytest.fixture(autouse=True)
def _close_sync_thread_connections():
    """Database connections opened on asgiref's one thread for sync code (sync_to_async in an
    async test), or on the consumers' database threads, outlive the test; a later test without
    database access would then trip over them in ``close_old_connections``. Close them once the
    test is done."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from config.db import close_pool

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)
    close_pool()  # consumers' database threads (config/db.py)


@pytest.fixture
def live_server_process(transactional_db, tmp_path, settings):
    """Start real daphne servers (``manage.py serve``) that share the test database and Redis,
    and this test's media roots (so the test sees what they store, and nothing lands in var/).

    Call it to start one (positional arguments go to ``serve``, keywords to its environment);
    every server started is stopped after the test.
    """
    from django.db import connection

    from tests.live import ServerProcess

    servers: list[ServerProcess] = []

    def start(*serve_args: str, **extra_env) -> ServerProcess:
        server = ServerProcess(
            database_name=connection.settings_dict["NAME"],
            log_dir=tmp_path,
            extra_env={
                "SALON_MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "SALON_PRIVATE_MEDIA_ROOT": str(settings.SALON_PRIVATE_MEDIA_ROOT),
                **extra_env,
            },
            serve_args=serve_args,
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
    from spaces.live.media import discard_media_plane

    discard_media_plane()
