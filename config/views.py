import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from spaces.live.media import current_media_plane

logger = logging.getLogger(__name__)


def home(request: HttpRequest):
    context = {}
    if request.user.is_authenticated:
        from voicetweets.views import feed_page

        context["feed"], context["feed_next"] = feed_page(
            viewer=request.user, before=request.GET.get("before")
        )
    return render(request, "home.html", context)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health check: database failed")
        return False
    finally:
        connection.close()


async def _channel_layer_ok() -> bool:
    """Round-trip one message through the channel layer, as a consumer's traffic would."""
    layer = get_channel_layer()
    try:
        channel = await layer.new_channel("healthz.")
        await layer.send(channel, {"type": "healthz.ping"})
        message = await asyncio.wait_for(layer.receive(channel), timeout=2)
        return message.get("type") == "healthz.ping"
    except Exception:
        logger.exception("health check: channel layer failed")
        return False


@never_cache
async def healthz(request: HttpRequest) -> JsonResponse:
    database = await sync_to_async(_database_ok, thread_sensitive=False)()
    channel_layer = await _channel_layer_ok()
    checks = {
        "database": "ok" if database else "failed",
        "channel_layer": "ok" if channel_layer else "failed",
    }
    healthy = database and channel_layer
    body = {"status": "ok" if healthy else "failed", **checks}
    plane = current_media_plane()
    if plane is not None:
        body["media"] = plane.stats()  # this process's audio counters, for operators and benches
    return JsonResponse(body, status=200 if healthy else 503)
