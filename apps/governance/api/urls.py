from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("secrets", views.SecretViewSet, basename="secret")
router.register("secret-grants", views.SecretGrantViewSet, basename="secretgrant")
urlpatterns = router.urls
