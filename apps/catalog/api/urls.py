from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("providers", views.ProviderViewSet, basename="provider")
router.register("models", views.ModelViewSet, basename="model")
urlpatterns = router.urls
