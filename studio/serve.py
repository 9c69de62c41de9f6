"""`python -m studio.serve app.py [streamlit options]`: `streamlit run` for a shared server.
No outside host: Streamlit's checkip.amazonaws.com lookup (websocket Origin check) answers
None; localhost, browser.serverAddress and the internal IP are still allowed. No 404 probes:
index.html tells the frontend where the server is, so a page opened directly (/playground)
no longer probes /playground/_stcore/health and host-config before the real ones."""
import sys
from pathlib import Path

from streamlit import net_util
from streamlit.web import cli
from streamlit.web.server.starlette import starlette_static_routes

# The frontend guesses the server's base path from the page URL: it tries the URL's own path
# (/playground/_stcore/health: a 404 in the console) before its parent (streamlit#7074).
# "./" is where index.html loads the frontend's scripts from, so it is the server's base path
# for the main page and every page, under a baseUrlPath or a proxy's prefix alike.
# Plotly rejects an animation's promise with no reason when Pause, Step or Reset interrupts
# it, and its buttons never catch it: that one rejection is expected, not an error.
BASE_HINT = ('<script>window.__streamlit = window.__streamlit || '
             '{BACKEND_BASE_URL: new URL("./", location.href).href};'
             'addEventListener("unhandledrejection", e => { if (e.reason === undefined) e.preventDefault(); });'
             '</script>')
_DROPPED = ("content-length", "etag", "last-modified")  # they described the file on disk
plain_static_handler = starlette_static_routes.create_streamlit_static_handler


def with_hint(html: str) -> str:
    if "<head>" not in html:
        raise RuntimeError("no <head> in Streamlit's index.html: its page changed")
    return html.replace("<head>", "<head>\n    " + BASE_HINT, 1)


def hinted_static_handler(directory: str, base_url: str | None):
    """Streamlit's static files, whose index.html (the main page's and every page's answer)
    carries BASE_HINT."""
    from starlette.responses import FileResponse, Response

    handler = plain_static_handler(directory, base_url)
    index = Path(directory, "index.html")
    html = with_hint(index.read_text(encoding="utf-8"))
    get_response = handler.get_response

    async def hinted(path, scope):
        response = await get_response(path, scope)
        if not (isinstance(response, FileResponse) and Path(response.path) == index):
            return response
        headers = {k: v for k, v in response.headers.items() if k not in _DROPPED}
        return Response(html, status_code=response.status_code, headers=headers)

    handler.get_response = hinted
    return handler


def fewer_malloc_arenas() -> None:
    """glibc gives each script thread its own heap arena and keeps them after a class leaves
    (+60 MB for 30 sessions); two arenas hold the server near its baseline."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        pass


def main() -> int:
    fewer_malloc_arenas()
    net_util.get_external_ip = lambda: None
    starlette_static_routes.create_streamlit_static_handler = hinted_static_handler
    sys.argv = ["streamlit", "run", *sys.argv[1:]]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
