from django.urls import path

from . import api, views

app_name = "search"

urlpatterns = [path("search/", views.search_page, name="search")]

# Mounted under /api/v1/.
api_urlpatterns = [path("search/", api.SearchView.as_view(), name="api-search")]
