"""Catalog pages: every signed-in user reads the catalog; platform admins add and change it."""

from django.contrib import messages
from django.shortcuts import redirect, render

from apps.accounts.permissions import has_perm, require
from apps.core.exceptions import ServiceError
from apps.core.views import login_required_view
from apps.governance.selectors import secret_list

from . import selectors, services
from .forms import ModelCreateForm, ModelEditForm, ModelFilterForm, ProviderCreateForm, ProviderEditForm


def _form_page(request, *, form, template: str, context: dict, save, success: str, redirect_to: str):
    """Render a form; on a valid POST call save(cleaned_data), else answer 400 with the errors beside the fields."""
    if request.method == "POST" and form.is_valid():
        try:
            obj = save(dict(form.cleaned_data))
            messages.success(request, success.format(obj=obj))
            return redirect(redirect_to)
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    status = 400 if request.method == "POST" else 200
    return render(request, template, {**context, "form": form}, status=status)


def _org_secrets(user):
    return secret_list(user=user, scope="org")


def _secret_by_name(user, name: str):
    if not name:
        return None
    secret = _org_secrets(user).filter(name=name).first()
    if secret is None:
        raise ServiceError(
            f"There is no organisation secret '{name}': create it under Secrets.", field="api_key_secret"
        )
    return secret


@login_required_view
def model_list_view(request):
    providers = list(selectors.provider_list(user=request.user))
    form = ModelFilterForm(request.GET or None, providers=providers)
    filters = form.cleaned_data if form.is_valid() else {}
    context = {
        "form": form,
        "models": selectors.model_list(user=request.user, **filters),
        "providers": providers,
        "can_manage": has_perm(request.user, "catalog.manage"),
    }
    return render(request, "catalog/model_list.html", context)


@login_required_view
def model_create_view(request):
    require(request.user, "catalog.manage")  # the form itself is for platform admins (403, audited)
    providers = list(selectors.provider_list(user=request.user))
    form = ModelCreateForm(request.POST or None, providers=providers, initial={"provider": request.GET.get("provider")})

    def save(data):
        provider = selectors.provider_get(user=request.user, name=data.pop("provider"))
        return services.model_create(actor=request.user, provider=provider, **data)

    return _form_page(
        request,
        form=form,
        template="catalog/model_form.html",
        context={"model": None},
        save=save,
        success="Model {obj.ref} added to the catalog.",
        redirect_to="catalog:model_list",
    )


@login_required_view
def model_edit_view(request, pk: int):
    model = selectors.model_get(user=request.user, pk=pk)
    require(request.user, "catalog.manage")
    initial = {name: getattr(model, name) for name in ModelEditForm.base_fields}
    form = ModelEditForm(request.POST or None, initial=initial)
    return _form_page(
        request,
        form=form,
        template="catalog/model_form.html",
        context={"model": model},
        save=lambda data: services.model_update(actor=request.user, model=model, **data),
        success="Model {obj.ref} saved.",
        redirect_to="catalog:model_list",
    )


@login_required_view
def provider_list_view(request):
    context = {
        "providers": selectors.provider_list(user=request.user),
        "can_manage": has_perm(request.user, "catalog.manage"),
    }
    return render(request, "catalog/provider_list.html", context)


@login_required_view
def provider_create_view(request):
    require(request.user, "catalog.manage")
    form = ProviderCreateForm(request.POST or None, secrets=_org_secrets(request.user))

    def save(data):
        data["api_key_secret"] = _secret_by_name(request.user, data.get("api_key_secret"))
        return services.provider_create(actor=request.user, **data)

    return _form_page(
        request,
        form=form,
        template="catalog/provider_form.html",
        context={"provider": None},
        save=save,
        success="Provider {obj.name} added.",
        redirect_to="catalog:provider_list",
    )


@login_required_view
def provider_edit_view(request, name: str):
    provider = selectors.provider_get(user=request.user, name=name)
    require(request.user, "catalog.manage")
    initial = {field: getattr(provider, field) for field in ProviderEditForm.base_fields if field != "api_key_secret"}
    initial["api_key_secret"] = provider.api_key_secret.name if provider.api_key_secret_id else ""
    form = ProviderEditForm(request.POST or None, initial=initial, secrets=_org_secrets(request.user))

    def save(data):
        data["api_key_secret"] = _secret_by_name(request.user, data.get("api_key_secret"))
        return services.provider_update(actor=request.user, provider=provider, **data)

    return _form_page(
        request,
        form=form,
        template="catalog/provider_form.html",
        context={"provider": provider},
        save=save,
        success="Provider {obj.name} saved.",
        redirect_to="catalog:provider_list",
    )
