"""The prompt spec: declared and used variables, and rendering values as plain text."""

import pytest

from apps.core.exceptions import ServiceError
from apps.prompts.services import prompt_render
from apps.prompts.specs import prompt_spec_validate


def refused(spec) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        prompt_spec_validate(spec)
    return info.value


def test_variables_get_their_defaults():
    spec = prompt_spec_validate({"template": "Hi {{name}}", "variables": [{"name": "name"}]})
    assert spec["variables"] == [{"name": "name", "description": "", "required": True, "default": None}]
    assert prompt_spec_validate({"template": "No variables."})["variables"] == []


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"template": "Hi {{ name }}"}, "template", "undeclared variable name: declare it or remove it"),
        ({"template": "Hi", "variables": [{"name": "name"}]}, "variables", "name is declared but not used"),
        ({"template": "{{a}}", "variables": [{"name": "a"}, {"name": "a"}]}, "variables", "a declared more than once"),
        ({"template": "{{ user.name }}", "variables": []}, "template", "not a variable name"),
        ({"template": "{{a}}", "variables": [{"name": "1a"}]}, "variables[0].name", "not a variable name"),
        ({"template": "{{a}}", "variables": [{"name": "a", "kind": "x"}]}, "variables[0].kind", "Unknown key"),
        (
            {"template": "{{a}}", "variables": [{"name": "a", "required": "yes"}]},
            "variables[0].required",
            "true or false",
        ),
        (
            {"template": "{{a}}", "variables": [{"name": "a", "default": "x"}]},
            "variables[0].default",
            "set required to false",
        ),
        ({"template": "{{a}}", "variables": ["a"]}, "variables[0]", "must be an object"),
        ({"template": "x" * 100_001}, "template", "too long"),
        ({"template": "   "}, "template", "required"),
        ({"template": 3}, "template", "must be a string"),
        ({"template": "x", "tone": "warm"}, "tone", "Unknown key"),
        ({}, "template", "required"),
    ],
)
def test_bad_prompts_name_the_field(spec, field, words):
    error = refused(spec)
    assert error.field == field, error.message
    assert words in error.message


SPEC = prompt_spec_validate(
    {
        "template": "Dear {{ customer }}, about {{topic}}: {{ customer }}.",
        "variables": [
            {"name": "customer", "description": "Who we write to"},
            {"name": "topic", "required": False, "default": "your order"},
        ],
    }
)


def test_render_fills_every_placeholder():
    assert (
        prompt_render(spec=SPEC, variables={"customer": "Ada", "topic": "refunds"}) == "Dear Ada, about refunds: Ada."
    )
    assert prompt_render(spec=SPEC, variables={"customer": "Ada"}) == "Dear Ada, about your order: Ada."


def test_render_names_a_missing_required_variable():
    with pytest.raises(ServiceError) as info:
        prompt_render(spec=SPEC, variables={"topic": "x"})
    assert info.value.message == "Missing required variable customer: give it a value (Who we write to)."


def test_values_are_plain_text_never_expanded():
    text = prompt_render(spec=SPEC, variables={"customer": "{{ topic }}", "topic": "T"})
    assert text == "Dear {{ topic }}, about T: {{ topic }}."
    assert prompt_render(spec=SPEC, variables={"customer": 7, "extra": "ignored"}) == "Dear 7, about your order: 7."
