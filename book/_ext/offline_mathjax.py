"""Serve MathJax 3 from the built book, so that its formulas typeset offline (no CDN).

The pip package django-static-mathjax (import name `mathjax`) ships MathJax's browser build. This
extension copies the component the pages load, and what it loads at run time, to <outdir>/mathjax/,
and points `mathjax_path` at it. Sphinx takes a relative `mathjax_path` as relative to _static/ and
links it relative to each page: `../mathjax/tex-chtml.js` becomes `_static/../mathjax/tex-chtml.js`
from a page at the top and `../_static/../mathjax/tex-chtml.js` from book/*.html. MathJax finds its
other files next to the script that loaded it. A folder of its own, not _static/: Jupyter Book adds
every .js of a book's _static/ to every page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mathjax
from sphinx.application import Sphinx
from sphinx.config import Config

ES5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
COMPONENT = "tex-chtml.js"  # TeX in, HTML out, with the menu and assistive MathML
# what it fetches on a page, when needed
RUNTIME = (
    "input/tex/extensions",  # TeX packages (autoload, \require)
    "output/chtml/fonts/woff-v2",
    "a11y",  # the accessibility tools of the right-click menu,
    "input/mml.js",  # the MathML input they use
    "sre",  # and their speech rules
)
OUT = "mathjax"  # the folder in the built site


def point_mathjax_path(app: Sphinx, config: Config) -> None:
    config.mathjax_path = f"../{OUT}/{COMPONENT}"


def copy_mathjax(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    for part in (COMPONENT, *RUNTIME):
        source, target = ES5 / part, Path(app.outdir) / OUT / part
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", point_mathjax_path)
    app.connect("builder-inited", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
