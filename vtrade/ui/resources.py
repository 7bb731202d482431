"""Everything the dashboard and the notebooks load comes from this machine: no CDN, no web fonts.

Classrooms and exam halls are often offline or firewalled, so a page that waits on the internet
renders late or not at all. Three things used to leave the machine:

- Panel's Fast design asks Google Fonts for Open Sans (its ``_resources['font']``), on every
  page of the served dashboard. :class:`LocalFast` is the same design without that request;
  the template gets the font from :data:`STATIC_DIR` instead (``fonts/open-sans.css``, the Latin
  Open Sans files, SIL Open Font License), served by :func:`vtrade.ui.serve.serve_trader` under
  :data:`STATIC_ROUTE`. Without that route (the dashboard shown some other way) the font stack
  falls back to the system's sans-serif: the page still never waits on the internet.
- Bokeh, Panel and HoloViews/hvPlot load their JavaScript from CDNs in a notebook (and so in the
  notebook's exported HTML) unless told to inline it: :func:`inline_notebook_resources`.
- The served dashboard's own JavaScript is already served by the server (Panel's bundled
  resources, Bokeh's ``server`` mode): the browser test checks that it stays so.

>>> LocalFast._resources.get("font")
{}
>>> sorted(p.name for p in (STATIC_DIR / "fonts").glob("*.woff2"))[0]
'open-sans-latin-400-normal.woff2'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from panel.io.resources import CDN_DIST
from panel.theme.fast import Fast
from panel.util import isurl

if TYPE_CHECKING:
    from panel.io.resources import ResourcesType

__all__ = [
    "FONT", "FONT_CSS", "STATIC_DIR", "STATIC_ROUTE", "LocalFast", "inline_notebook_resources", "local_template",
    "served_resources",
]  # fmt: skip

#: Files the server serves itself (fonts), and the URL path they are served under.
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_ROUTE = "vtrade_static"
#: The font stylesheet, relative to the page (``/trader``): Panel prefixes the app's root path if
#: the server runs under one, so it works behind a proxy prefix too.
FONT_CSS = f"{STATIC_ROUTE}/fonts/open-sans.css"
#: The Fast design's own face first (served locally), then what any system has.
FONT = ("'Open Sans', system-ui, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Liberation Sans', 'DejaVu Sans', "
        "sans-serif")


class LocalFast(Fast):
    """Panel's Fast design without its Google Fonts stylesheet (everything else unchanged).

    Panel adds a design's ``font`` resources to every page as stylesheet links, and to the
    process-wide resources once a template has set ``config.design``; an empty entry removes
    the request at both places.
    """

    # Panel finds a design's relative resources (e.g. ``js/fast_design.js``) under the folder named
    # after the class (``fast/``): point them there explicitly, as bundled-file URLs, which Panel
    # serves from its own bundle (never the CDN) when the server serves its resources.
    _resources: ClassVar[ResourcesType] = cast("ResourcesType", {
        **Fast._resources,
        "font": {},
        "js_modules": {
            name: url if isurl(url) else f"{CDN_DIST}bundled/{Fast.__name__.lower()}/{url}"
            for name, url in Fast._resources["js_modules"].items()
        },
    })


def local_template(template: Any) -> Any:
    """Point a Fast template at the locally served font (call right after building it).

    The template must have been made with ``design=LocalFast`` (a constructor-only setting);
    ``font`` names the family stack the template's CSS uses.
    """
    if not issubclass(template.design, LocalFast):
        raise ValueError("build the template with design=LocalFast, or it asks Google Fonts for Open Sans")
    template.font = FONT
    template.font_url = ""  # only the grid template links it, but never leave a Google URL about
    if FONT_CSS not in template.config.css_files:
        template.config.css_files = [*template.config.css_files, FONT_CSS]
    return template


def served_resources() -> None:
    """Make pages served from this process load Panel's and Bokeh's files from this server.

    Panel points a served page at its CDN whenever Bokeh's ``resources`` setting is anything
    but ``"server"`` (``panel.io.resources.use_cdn``), and :func:`inline_notebook_resources`
    sets it to ``"inline"`` for notebooks: a dashboard served from a process that set up a
    notebook (a test session, a notebook serving the dashboard) would otherwise reach the
    internet for its CSS and JavaScript.
    """
    from bokeh.settings import settings

    if settings.resources(default="server") != "server":
        settings.resources.unset_value()


def inline_notebook_resources() -> None:
    """Make notebooks embed Bokeh's, Panel's and HoloViews' JavaScript instead of loading it
    from CDNs, so plots show offline and a saved or exported notebook works without internet.

    Call it before ``import hvplot.pandas`` (which loads the plotting extension as it is
    imported) and before the first ``pn.extension()``; calling it again does nothing new.
    Costs a few MB in a saved notebook's outputs; notebooks in the repository are stored
    without outputs.
    """
    import holoviews as hv
    import panel as pn
    from bokeh.settings import settings

    # Panel's extension and pn.panel(...).save(...). (A settable option at run time; Panel's type
    # annotations only show the getter.)
    pn.config.inline = True  # type: ignore[misc]
    settings.resources.set_value("inline")  # Bokeh's own output_notebook/show/save
    # hvPlot's import-time extension call and hv.extension() take their default from here: in
    # Jupyter hv.extension is the notebook extension, whose ``inline`` defaults to False (outside
    # Jupyter it has no such setting and loads nothing into a page).
    if "inline" in hv.extension.param:
        hv.extension.inline = True
