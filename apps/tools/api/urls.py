from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("tools", views.ToolViewSet, basename="tool")
urlpatterns = router.urls
