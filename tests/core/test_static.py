"""Browser code is served from this server, installed from package registries, never a CDN."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plotly_and_api_docs_assets_are_served_locally(client):
    for path in (
        "/static/vendor/plotly/plotly.min.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/core/app.css",
    ):
        response = client.get(path)
        assert response.status_code == 200, path


def test_no_template_or_stylesheet_refers_to_another_host():
    offenders = []
    for folder in ("templates", "static"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".html", ".css", ".js"}:
                text = path.read_text()
                if "http://" in text or "https://" in text or "//cdn" in text:
                    offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"Pages must work offline; these refer to other hosts: {offenders}"
