from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.core.views import login_required_view

from .export import iter_csv, iter_jsonl
from .forms import AuditFilterForm
from .selectors import audit_event_list
from .verify import audit_chain_verify


def _filtered(request):
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    return form, audit_event_list(user=request.user, filters=filters)


@login_required_view
def audit_event_list_view(request):
    form, events = _filtered(request)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/auditevent_list.html", {"form": form, "page": page, "query": query.urlencode()})


@login_required_view
def audit_event_export_view(request, fmt: str):
    _, events = _filtered(request)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        response = StreamingHttpResponse(iter_csv(events), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="fleetdeck-audit-{stamp}.csv"'
    else:
        response = StreamingHttpResponse(iter_jsonl(events), content_type="application/x-ndjson; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="fleetdeck-audit-{stamp}.jsonl"'
    return response


@login_required_view
def audit_verify_view(request):
    audit_event_list(user=request.user)  # the same permission as reading the log
    result = audit_chain_verify()
    return render(request, "audit/audit_verify.html", {"result": result})
