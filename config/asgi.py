"""ASGI entry point: HTTP goes to Django, websockets through origin and session checks."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Set up Django before importing anything that touches models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from config.request_bodies import RequestBodyLimitMiddleware, RequestBodyLimits  # noqa: E402
from config.roles import RoleRouter, current_role  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from config.websocket_origin import SameOriginValidator  # noqa: E402
from spaces.auth import SuspendedMemberMiddleware, TokenAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimitMiddleware(
            django_asgi_app, limits=RequestBodyLimits.from_settings(settings)
        ),
        "websocket": TokenAuthMiddleware(
            # Browsers: the origin check of Django's CSRF (scheme, host and port, and
            # CSRF_TRUSTED_ORIGINS), then the session cookie.
            session_app=SameOriginValidator(
                AuthMiddlewareStack(SuspendedMemberMiddleware(URLRouter(websocket_urlpatterns)))
            ),
            # Other clients: an API token, never sent ambiently, so no origin check applies.
            token_app=URLRouter(websocket_urlpatterns),
        ),
    }
)

# ``manage.py serve --role web|live`` serves part of this (config/roles.py); ``all`` everything.
if current_role() != "all":
    application = RoleRouter(application, role=current_role())
