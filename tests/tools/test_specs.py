"""The tool spec: strict validation naming the field, normalisation so equal definitions hash equally."""

import pytest

from apps.core.exceptions import ServiceError
from apps.core.versioning import spec_hash
from apps.tools.specs import tool_spec_validate
from tests.tools.factories import http_spec


def refused(spec) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        tool_spec_validate(spec)
    return info.value


def test_a_minimal_spec_is_filled_with_defaults():
    spec = tool_spec_validate(
        {"description": "Search.", "kind": "context", "config": {"operation": "search", "space": "kb"}}
    )
    assert spec["parameters"] == {"type": "object", "properties": {}}
    assert spec["sandbox"] == {"cpu_seconds": 10, "memory_mb": 256, "timeout_s": 30, "network": False}
    assert spec["side_effect"] == "read" and spec["requires_approval"] is False and spec["audit"] is True
    assert spec["rate_limit"] == {"calls": None, "per_seconds": 60}
    assert spec["cost_per_call"] == 0.0 and spec["secrets"] == [] and spec["permissions_required"] == []


def test_http_config_gets_its_defaults():
    config = tool_spec_validate(http_spec())["config"]
    assert config == {
        "method": "GET",
        "url": "https://crm.example.com/customers/{id}",
        "query": {},
        "headers": {},
        "body": None,
        "timeout_s": 30,
        "max_response_bytes": 1024 * 1024,
    }


def test_equal_definitions_hash_equally():
    explicit = http_spec(
        cost_per_call=0,
        permissions_required=["crm.read", "crm.read"],
        sandbox={"cpu_seconds": 10},
        side_effect="read",
    )
    assert spec_hash(tool_spec_validate(explicit)) == spec_hash(tool_spec_validate(http_spec()))


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (http_spec(colour="blue"), "colour", "Unknown key colour"),
        (http_spec(kind="ftp"), "kind", "must be one of"),
        (http_spec(description=""), "description", "required"),
        (http_spec(description=42), "description", "must be a string"),
        (http_spec(description="x" * 2001), "description", "too long"),
        (http_spec(parameters={"type": "array"}), "parameters", '"type": "object"'),
        (
            http_spec(parameters={"type": "object", "properties": {"id": {"type": "strnig"}}}),
            "parameters",
            "not a valid JSON Schema",
        ),
        (http_spec(parameters="{}"), "parameters", "must be an object"),
        (http_spec(permissions_required=["CRM Write"]), "permissions_required", "not a permission label"),
        (http_spec(permissions_required="crm.read"), "permissions_required", "must be a list"),
        (http_spec(sandbox={"cpu_seconds": 0}), "sandbox.cpu_seconds", "between 1 and 300"),
        (http_spec(sandbox={"memory_mb": 8192}), "sandbox.memory_mb", "between 16 and 4096"),
        (http_spec(sandbox={"timeout_s": 1.5}), "sandbox.timeout_s", "whole number"),
        (http_spec(sandbox={"network": "yes"}), "sandbox.network", "true or false"),
        (http_spec(sandbox={"gpu": 1}), "sandbox.gpu", "Unknown key"),
        (http_spec(side_effect="delete"), "side_effect", "must be one of"),
        (http_spec(requires_approval="no"), "requires_approval", "true or false"),
        (http_spec(cost_per_call=-1), "cost_per_call", "negative"),
        (http_spec(rate_limit={"calls": 0}), "rate_limit.calls", "between"),
        (http_spec(secrets=["Not A Name"]), "secrets", "not a secret name"),
    ],
)
def test_bad_specs_name_the_field(spec, field, words):
    error = refused(spec)
    assert error.field == field
    assert words in error.message


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({}, "config.url", "required"),
        ({"url": "ftp://crm.example.com/x"}, "config.url", "http:// or https://"),
        ({"url": "https://{host}/x"}, "config.url", "host cannot be a placeholder"),
        ({"url": "https://crm.example.com/customers/{customer}"}, "config.url", "customer"),
        ({"url": "https://crm.example.com/x", "method": "FETCH"}, "config.method", "must be one of"),
        ({"url": "https://crm.example.com/x", "timeout_s": 500}, "config.timeout_s", "between 1 and 120"),
        (
            {"url": "https://crm.example.com/x", "max_response_bytes": 11 * 1024 * 1024},
            "config.max_response_bytes",
            "between",
        ),
        ({"url": "https://crm.example.com/x", "query": {"q": "{term}"}}, "config.query", "term"),
        ({"url": "https://crm.example.com/x", "query": {"q": 3}}, "config.query", "string template"),
        (
            {"url": "https://crm.example.com/x", "headers": {"Authorization": "Bearer {{secrets.crm-key}}"}},
            "config.headers",
            "not listed in secrets",
        ),
        ({"url": "https://crm.example.com/x?key={{secrets.crm-key}}"}, "config.url", "secrets go in headers only"),
        ({"url": "https://crm.example.com/x", "body": "text"}, "config.body", "must be an object"),
        ({"url": "https://crm.example.com/x", "code": "x"}, "config.code", "Unknown key"),
    ],
)
def test_http_config_is_checked(config, field, words):
    error = refused(http_spec(config=config))
    assert error.field == field, error.message
    assert words in error.message


def test_url_placeholders_must_be_declared_parameters():
    error = refused(http_spec(config={"url": "https://crm.example.com/customers/{customer}"}))
    assert "add customer to parameters.properties" in error.message


@pytest.mark.parametrize(
    ("kind", "config", "field", "words"),
    [
        ("python", {}, "config.code", "required"),
        ("python", {"code": "def main(:\n"}, "config.code", "syntax error at line 1"),
        ("python", {"code": "def run():\n    return 1\n"}, "config.entrypoint", "defines no function main"),
        ("python", {"code": "def main(): pass", "entrypoint": "1st"}, "config.entrypoint", "identifier"),
        ("python", {"code": "x = '" + "a" * 70_000 + "'\ndef main(): pass"}, "config.code", "at most 64 KiB"),
        ("agent_handoff", {}, "config.agent", "required"),
        ("agent_handoff", {"agent": "Billing Bot"}, "config.agent", "not an agent name"),
        ("mcp", {"tool_name": "search"}, "config.url", "required for the streamable_http"),
        ("mcp", {"transport": "stdio", "tool_name": "search"}, "config.command", "required for the stdio"),
        (
            "mcp",
            {"transport": "stdio", "tool_name": "s", "command": ["srv"], "url": "https://x.example.com"},
            "config.url",
            "remove it",
        ),
        ("mcp", {"transport": "stdio", "tool_name": "s", "command": ["srv", 3]}, "config.command", "a string"),
        ("mcp", {"url": "https://mcp.example.com"}, "config.tool_name", "required"),
        ("context", {"operation": "delete", "space": "kb"}, "config.operation", "must be one of"),
        ("context", {"operation": "read"}, "config.space", "required"),
    ],
)
def test_each_kind_checks_its_config(kind, config, field, words):
    error = refused({"description": "A tool.", "kind": kind, "config": config})
    assert error.field == field, error.message
    assert words in error.message


def test_valid_configs_of_every_kind():
    specs = [
        {"kind": "python", "config": {"code": "def main(**kw):\n    return kw\n"}},
        {"kind": "agent_handoff", "config": {"agent": "billing-bot"}},
        {"kind": "mcp", "config": {"transport": "stdio", "command": ["mcp-srv", "--stdio"], "tool_name": "search"}},
        {"kind": "mcp", "config": {"url": "https://mcp.example.com/mcp", "tool_name": "search"}},
        {"kind": "context", "config": {"operation": "record_decision", "space": "decisions"}},
    ]
    for spec in specs:
        assert tool_spec_validate({"description": "A tool.", **spec})["kind"] == spec["kind"]


def test_oversized_spec_is_refused():
    error = refused(http_spec(parameters={**http_spec()["parameters"], "description": "x" * 300_000}))
    assert error.field == "spec" and "limit" in error.message


def test_only_http_tools_may_use_secrets():
    spec = {
        "description": "Run code.",
        "kind": "python",
        "config": {"code": "def main():\n    return 1\n"},
        "secrets": ["db-password"],
    }
    with pytest.raises(ServiceError, match="Only HTTP tools can use secrets") as caught:
        tool_spec_validate(spec)
    assert caught.value.field == "secrets"
