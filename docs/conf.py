"""Sphinx configuration of nearkit's documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (from the repository root).
"""

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
# the source tree first, so a checkout documents itself even where another copy is installed
sys.path.insert(0, str(HERE.parent / "src"))

import nearkit  # noqa: E402

project = "nearkit"
author = "nearkit developers"
copyright = "nearkit developers"
release = nearkit.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from _static: formulas render offline too
    "sphinx.ext.viewcode",
    "numpydoc",
    "nearkit_docs",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
root_doc = "index"
default_role = "literal"

# autosummary writes one page per public name listed in the API pages
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
autodoc_member_order = "groupwise"

# numpydoc renders the docstrings; methods are listed by autodoc in the class template
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

html_theme = "furo"
html_title = f"nearkit {release}"
html_static_path = ["_static"]
html_css_files = ["nearkit.css"]
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """scikit-learn's generated ``set_{method}_request`` methods (metadata routing) link to
    its own glossary; they are documented there."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


_SKLEARN_ROLE = re.compile(r":(?:ref|term):`([^`<]*?)\s*(?:<([^>`]*)>)?`")


def _plain_sklearn_links(app, what, name, obj, options, lines):
    """Methods inherited from scikit-learn (``get_params``, ``set_output``, ...) link to
    labels of scikit-learn's own documentation: keep their text, drop the link."""
    if not getattr(obj, "__module__", "").startswith("sklearn"):
        return
    def text(match):
        title, label = match.group(1), match.group(2)
        if label is None and "_" in title and " " not in title:  # a bare label
            return "scikit-learn's documentation"
        return title or label

    lines[:] = [_SKLEARN_ROLE.sub(text, line) for line in lines]


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
    app.connect("autodoc-process-docstring", _plain_sklearn_links, priority=400)
