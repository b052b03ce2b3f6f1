from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from search.urls import api_urlpatterns as search_api_urls

from . import views

handler404 = "config.error_pages.page_not_found"
handler500 = "config.error_pages.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("voicetweets.urls")),
    path("", include("spaces.urls")),
    path("", include("notifications.urls")),
    path("", include("search.urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("voicetweets.api_urls")),
    path("api/v1/", include("spaces.api_urls")),
    path("api/v1/", include("notifications.api_urls")),
    path("api/v1/", include(search_api_urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script as a file of its own (?script), not inline.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
