from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("runs", views.RunViewSet, basename="run")
router.register("approvals", views.ApprovalViewSet, basename="approval")
router.register("webhooks", views.WebhookViewSet, basename="webhook")
router.register("schedules", views.ScheduleViewSet, basename="schedule")

urlpatterns = [
    path("agents/<int:agent_pk>/webhooks/", views.AgentWebhookListView.as_view(), name="agent-webhooks"),
    path("agents/<int:agent_pk>/schedules/", views.AgentScheduleListView.as_view(), name="agent-schedules"),
    path("agents/<int:agent_pk>/playground/", views.AgentPlaygroundView.as_view(), name="agent-playground"),
    *router.urls,
]
