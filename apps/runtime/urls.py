from django.urls import path

from . import views

app_name = "runtime"
urlpatterns = [
    path("runs/", views.run_list_view, name="run_list"),
    path("runs/<int:pk>/", views.run_detail_view, name="run_detail"),
    path("runs/<int:pk>/steps.json", views.run_steps_json_view, name="run_steps_json"),
    path("runs/<int:pk>/cancel/", views.run_cancel_view, name="run_cancel"),
    path("agents/<int:pk>/run/", views.run_start_view, name="run_start"),
    path("agents/<int:pk>/playground/", views.playground_run_view, name="playground_run"),
    path("agents/<int:pk>/budget/", views.agent_budget_view, name="agent_budget"),
    path("agents/<int:pk>/triggers/", views.trigger_list_view, name="trigger_list"),
    path("agents/<int:pk>/triggers/webhooks/", views.webhook_create_view, name="webhook_create"),
    path("agents/<int:pk>/triggers/schedules/", views.schedule_create_view, name="schedule_create"),
    path("approvals/", views.approval_list_view, name="approval_list"),
    path("approvals/<int:pk>/", views.approval_detail_view, name="approval_detail"),
    path("approvals/<int:pk>/decide/", views.approval_decide_view, name="approval_decide"),
    path("webhooks/<int:pk>/rotate/", views.webhook_rotate_view, name="webhook_rotate"),
    path("webhooks/<int:pk>/enabled/", views.webhook_enabled_view, name="webhook_enabled"),
    path("webhooks/<int:pk>/delete/", views.webhook_delete_view, name="webhook_delete"),
    path("schedules/<int:pk>/enabled/", views.schedule_enabled_view, name="schedule_enabled"),
    path("schedules/<int:pk>/delete/", views.schedule_delete_view, name="schedule_delete"),
    # Public: the signature is the authentication (see services.webhook_receive).
    path("hooks/<uuid:token>/", views.webhook_receive_view, name="webhook_receive"),
]
