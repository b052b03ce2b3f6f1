import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
_SERVICE_VARS = {"DATABASE_URL", "REDIS_URL", "SALON_DATA_DIR", "DJANGO_SETTINGS_MODULE"}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARS}
    return {**env, **extra}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_default_needs_no_services(tmp_path):
    """With no environment set, Salon uses SQLite, in-memory channels and in-process Celery."""
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], "
        "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'cache': s.CACHES['default']['BACKEND'], "
        "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'media': str(s.MEDIA_ROOT)}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=_clean_env(DJANGO_SETTINGS_MODULE="config.settings", SALON_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    config = json.loads(result.stdout)

    assert config == {
        "db": "django.db.backends.sqlite3",
        "layer": "channels.layers.InMemoryChannelLayer",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "eager": True,
        "media": str(tmp_path / "media"),
    }


def test_production_settings_pass_deploy_checks(tmp_path):
    """config.settings_production passes `check --deploy` with no warning at all."""
    env = _clean_env(
        DJANGO_SETTINGS_MODULE="config.settings_production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="salon.example.org",
        SALON_DATA_DIR=str(tmp_path),
    )
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_settings_refuse_the_embedded_secret_key(tmp_path):
    """Production settings will not start on a missing or development secret key."""
    env = _clean_env(
        DJANGO_SETTINGS_MODULE="config.settings_production",
        DJANGO_ALLOWED_HOSTS="salon.example.org",
        SALON_DATA_DIR=str(tmp_path),
    )
    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_database_url_must_be_postgresql(tmp_path):
    """A DATABASE_URL for another engine fails at start with a message naming the variable."""
    env = _clean_env(
        DATABASE_URL="mysql://u:p@localhost/salon",
        DJANGO_SETTINGS_MODULE="config.settings",
        SALON_DATA_DIR=str(tmp_path),
    )
    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr
