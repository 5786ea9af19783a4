from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("context/spaces", views.ContextSpaceViewSet, basename="context-space")
urlpatterns = router.urls
