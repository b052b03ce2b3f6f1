import pytest


@pytest.mark.django_db
def test_healthz_reports_database_and_channel_layer(client):
    """/healthz answers 200 once a query and a channel-layer round trip both succeed."""
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


@pytest.mark.django_db
def test_suite_runs_on_postgresql_and_redis(settings):
    """The suite exercises the production database and channel layer, not the embedded ones."""
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"].startswith("channels_redis.")


@pytest.mark.django_db
def test_healthz_is_503_when_channel_layer_is_down(client, settings):
    """A dead Redis makes /healthz fail loudly instead of pretending all is well."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()

    assert response.status_code == 503
    assert response.json()["channel_layer"] == "failed"
    assert response.json()["database"] == "ok"
