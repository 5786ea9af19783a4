from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("agents", views.AgentViewSet, basename="agent")
router.register("inventory", views.InventoryViewSet, basename="inventory")
urlpatterns = router.urls
