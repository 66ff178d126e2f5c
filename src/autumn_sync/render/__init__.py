"""Pure renderers: a `ChangePlan` in, a string out. Looked up by format name."""

from collections.abc import Callable

from autumn_sync.plan.plan import ChangePlan
from autumn_sync.render.json import render_json
from autumn_sync.render.markdown import render_markdown
from autumn_sync.render.text import render_text

Renderer = Callable[[ChangePlan, bool], str]

RENDERERS: dict[str, Renderer] = {
    "text": render_text,
    "json": lambda plan, _color: render_json(plan),
    "markdown": lambda plan, _color: render_markdown(plan),
}

__all__ = ["RENDERERS", "render_json", "render_markdown", "render_text"]
