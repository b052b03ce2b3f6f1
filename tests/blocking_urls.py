"""Salon's URLs plus one that blocks the server's event loop, as a slow handler would.

Only ``tests/blocking_settings.py`` routes here: tests prove that the media path keeps going
while the loop that serves HTTP, handshakes and the database is stuck.
"""

import threading
import time

from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as salon_urlpatterns


async def block_loop(request):
    """Hold the event loop for ``?ms=`` milliseconds (a coroutine that never awaits), and say
    when, on the clock every process of this machine shares (CLOCK_MONOTONIC)."""
    seconds = min(int(request.GET.get("ms", "300")), 5000) / 1000
    start = time.monotonic()
    time.sleep(seconds)  # on purpose: nothing else on this loop runs meanwhile
    end = time.monotonic()
    # daphne's reactor, hence every socket's reads and control writes, runs on the main thread.
    on_loop = threading.current_thread() is threading.main_thread()
    return JsonResponse({"start": start, "end": end, "on_main_thread": on_loop})


urlpatterns = [path("test/block-loop", block_loop), *salon_urlpatterns]
