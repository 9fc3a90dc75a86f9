"""A diff as HTML: a ``<section>`` that a page (the audit report) can include, and a
self-contained page around it (``diff.html``).

Drawn with the report's Jinja environment (autoescape on, the same badges and stylesheet)
from the diff dict alone.
"""
from __future__ import annotations

from typing import Any

from markupsafe import Markup

from auditkit.render import diff_view
from auditkit.render.html import STYLESHEET, _css_for_style_element, environment

SECTION_TEMPLATE = "diff_section.html.j2"
PAGE_TEMPLATE = "diff.html.j2"


def render_diff_section(diff: dict[str, Any]) -> Markup:
    """The diff as one ``<section class="diff">`` (escaped; safe to place in a page)."""
    return Markup(environment().get_template(SECTION_TEMPLATE).render(diff=diff, view=diff_view))


def render_diff_html(diff: dict[str, Any]) -> str:
    """The diff as a self-contained HTML page."""
    env = environment()
    assert env.loader is not None
    css, _, _ = env.loader.get_source(env, STYLESHEET)
    return env.get_template(PAGE_TEMPLATE).render(diff=diff, view=diff_view,
                                                  css=Markup(_css_for_style_element(css)))
