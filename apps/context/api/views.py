"""The context API: spaces, their entries, versioned state (409 on a version conflict), search and grants."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.selectors import team_get
from apps.core.api import SelectorViewSetMixin
from apps.core.exceptions import ServiceError

from .. import selectors, services
from ..models import ContextSpace, EntryKind
from .serializers import (
    ContextConflictSerializer,
    ContextEntryCreateSerializer,
    ContextEntryListSerializer,
    ContextEntrySerializer,
    ContextEntryUpdateSerializer,
    ContextGrantSerializer,
    ContextGrantSetSerializer,
    ContextSearchResultSerializer,
    ContextSpaceCreateSerializer,
    ContextSpaceSerializer,
    ContextSpaceUpdateSerializer,
    ContextStateDetailSerializer,
    ContextStateSerializer,
    ContextStateWriteSerializer,
)

ENTRY_PATH = OpenApiParameter("entry_pk", int, OpenApiParameter.PATH, description="The entry's id.")
KEY_PATH = OpenApiParameter("key", str, OpenApiParameter.PATH, description="The state key.")
GRANT_PATH = OpenApiParameter("grant_pk", int, OpenApiParameter.PATH, description="The grant's id.")
KEY_REGEX = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}"


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("team", str, description="A team's slug."),
            OpenApiParameter("q", str, description="Part of the name or description."),
        ]
    ),
    create=extend_schema(request=ContextSpaceCreateSerializer, responses={201: ContextSpaceSerializer}),
    partial_update=extend_schema(request=ContextSpaceUpdateSerializer, responses=ContextSpaceSerializer),
)
class ContextSpaceViewSet(
    SelectorViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Context spaces of the teams the caller may see. Builders create, describe, delete and grant them;
    operators add entries, record decisions and write state."""

    serializer_class = ContextSpaceSerializer
    queryset = ContextSpace.objects.none()  # for the schema; requests read through the selector
    list_selector = selectors.context_space_list

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False) or self.action != "list":
            return super().get_queryset()
        params = self.request.query_params
        filters = {"team": params.get("team", "")[:50], "q": params.get("q", "")[:100]}
        return selectors.context_space_list(user=self.request.user, filters=filters)

    def _answer(self, space, code=status.HTTP_200_OK) -> Response:
        """Return the space as the API shows it (with its counts), read again through the selector."""
        return Response(
            self.get_serializer(selectors.context_space_get(user=self.request.user, pk=space.pk)).data, status=code
        )

    def create(self, request):
        serializer = ContextSpaceCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        team = team_get(user=request.user, slug=data["team"])
        space = services.context_space_create(
            actor=request.user, team=team, name=data["name"], description=data["description"]
        )
        return self._answer(space, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        """Change the description; the name stays (agents' specs refer to it)."""
        space = self.get_object()
        serializer = ContextSpaceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.context_space_update(
            actor=request.user, space=space, description=serializer.validated_data["description"]
        )
        return self._answer(space)

    def destroy(self, request, pk=None):
        """Delete the space with its entries, decisions, state and grants."""
        services.context_space_delete(actor=request.user, space=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- entries ----------------------------------------------------------------------------

    @extend_schema(
        methods=["GET"],
        parameters=[OpenApiParameter("kind", str, enum=EntryKind.values, description="Only entries of this kind.")],
        responses=ContextEntryListSerializer(many=True),
    )
    @extend_schema(methods=["POST"], request=ContextEntryCreateSerializer, responses={201: ContextEntrySerializer})
    @action(detail=True, methods=["get", "post"])
    def entries(self, request, pk=None):
        """List the space's entries (newest change first), or add a fact, a document or a decision."""
        space = self.get_object()
        if request.method == "GET":
            rows = selectors.context_entry_list(space=space, kind=request.query_params.get("kind") or None)
            page = self.paginate_queryset(rows)
            return self.get_paginated_response(ContextEntryListSerializer(page, many=True).data)
        serializer = ContextEntryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["kind"] == EntryKind.DECISION:
            entry = services.context_decision_record(
                actor=request.user,
                space=space,
                title=data["title"],
                rationale=data["body"],
                decided_by=data["decided_by"],
                metadata=data["metadata"],
            )
        else:
            entry = services.context_entry_add(
                actor=request.user,
                space=space,
                kind=data["kind"],
                key=data["key"],
                title=data["title"],
                body=data["body"],
                metadata=data["metadata"],
            )
        return Response(ContextEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], parameters=[ENTRY_PATH], responses=ContextEntrySerializer)
    @extend_schema(
        methods=["PATCH"],
        parameters=[ENTRY_PATH],
        request=ContextEntryUpdateSerializer,
        responses=ContextEntrySerializer,
    )
    @extend_schema(methods=["DELETE"], parameters=[ENTRY_PATH], responses={204: None})
    @action(detail=True, methods=["get", "patch", "delete"], url_path=r"entries/(?P<entry_pk>[0-9]+)", url_name="entry")
    def entry(self, request, pk=None, entry_pk=None):
        """Read, change or delete one fact or document; decisions are append-only (400 on change)."""
        space = self.get_object()
        entry = selectors.context_entry_get(space=space, pk=entry_pk)
        if request.method == "GET":
            return Response(ContextEntrySerializer(entry).data)
        if request.method == "DELETE":
            services.context_entry_delete(actor=request.user, entry=entry)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = ContextEntryUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = services.context_entry_update(actor=request.user, entry=entry, **serializer.validated_data)
        return Response(ContextEntrySerializer(entry).data)

    # --- state ------------------------------------------------------------------------------

    @extend_schema(request=None, responses=ContextStateSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="state", url_name="state")
    def state(self, request, pk=None):
        """List the space's state values with their versions."""
        space = self.get_object()
        page = self.paginate_queryset(selectors.context_state_list(space=space))
        return self.get_paginated_response(ContextStateSerializer(page, many=True).data)

    @extend_schema(methods=["GET"], parameters=[KEY_PATH], responses=ContextStateDetailSerializer)
    @extend_schema(
        methods=["PUT"],
        parameters=[KEY_PATH],
        request=ContextStateWriteSerializer,
        responses={200: ContextStateSerializer, 409: ContextConflictSerializer},
    )
    @action(detail=True, methods=["get", "put"], url_path=rf"state/(?P<key>{KEY_REGEX})", url_name="state-key")
    def state_key(self, request, pk=None, key=None):
        """Read a state value with its history, or write it naming the version you read (409 if it moved on)."""
        space = self.get_object()
        if request.method == "GET":
            return Response(ContextStateDetailSerializer(selectors.context_state_get(space=space, key=key)).data)
        serializer = ContextStateWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            state = services.context_state_write(
                actor=request.user,
                space=space,
                key=key,
                value=serializer.validated_data["value"],
                expected_version=serializer.validated_data["expected_version"],
            )
        except services.VersionConflict as exc:
            body = {"detail": exc.message, "code": exc.code, "current_version": exc.current_version}
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(ContextStateSerializer(state).data)

    # --- search -----------------------------------------------------------------------------

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter("q", str, required=True, description="Words to find (every word must match)."),
            OpenApiParameter("limit", int, description="At most this many results (1-50, default 10)."),
            OpenApiParameter("kind", str, enum=EntryKind.values, description="Only entries of this kind."),
        ],
        responses=ContextSearchResultSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def search(self, request, pk=None):
        """Search the space's facts, documents and decisions; the best matches first, each with a snippet."""
        space = self.get_object()
        params = request.query_params
        try:
            limit = int(params.get("limit") or 10)
        except ValueError:
            raise ServiceError("limit must be a whole number from 1 to 50.", field="limit") from None
        results = selectors.context_search(
            space=space, query=params.get("q", ""), limit=limit, kind=params.get("kind") or None
        )
        return Response(ContextSearchResultSerializer(results, many=True).data)

    # --- grants -----------------------------------------------------------------------------

    @extend_schema(methods=["GET"], request=None, responses=ContextGrantSerializer(many=True))
    @extend_schema(methods=["POST"], request=ContextGrantSetSerializer, responses={201: ContextGrantSerializer})
    @action(detail=True, methods=["get", "post"])
    def grants(self, request, pk=None):
        """List which agents may use the space, or grant one (again: change its access)."""
        space = self.get_object()
        if request.method == "GET":
            return Response(ContextGrantSerializer(selectors.context_grant_list(space=space), many=True).data)
        serializer = ContextGrantSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent = selectors.context_grant_agent(space=space, agent=serializer.validated_data["agent"])
        grant = services.context_grant_set(
            actor=request.user, space=space, agent=agent, access=serializer.validated_data["access"]
        )
        return Response(ContextGrantSerializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[GRANT_PATH], request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"grants/(?P<grant_pk>[0-9]+)", url_name="grant")
    def grant(self, request, pk=None, grant_pk=None):
        """Revoke an agent's grant: it can no longer read or write the space."""
        space = self.get_object()
        grant = selectors.context_grant_get(space=space, pk=grant_pk)
        services.context_grant_revoke(actor=request.user, grant=grant)
        return Response(status=status.HTTP_204_NO_CONTENT)
