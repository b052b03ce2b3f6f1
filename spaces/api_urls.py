from rest_framework.routers import SimpleRouter

from . import api

# REST API of the spaces app, mounted under /api/v1/.
router = SimpleRouter()
router.register("spaces", api.SpaceViewSet, basename="api-space")
urlpatterns = router.urls
