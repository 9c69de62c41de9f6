"""The server asks no outside host for anything (issue 18, item 8): `streamlit run app.py` with
the project's config looks up no outside name and opens no outside socket at start (an audit
hook in the server process records every attempt), and an error box in chromium links to no
outside site ("Ask Google" / "Ask ChatGPT")."""
from __future__ import annotations

import contextlib
import os
import time
from urllib.parse import urlparse

import pytest

from tests.conftest import ROOT, serve_app

LOCAL = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::", "", "None")
# imported by the server's interpreter (first on PYTHONPATH): logs every name lookup and
# socket connect, before it happens, to PFML_NET_LOG
HOOK = """import os, socket, sys
_LOG = os.environ["PFML_NET_LOG"]
def _hook(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
        if args[0].type == socket.SOCK_DGRAM:  # a UDP connect sends nothing: a route lookup
            event = "socket.connect-udp"
    else:
        return
    host = host.decode() if isinstance(host, bytes) else str(host)
    with open(_LOG, "a") as f:
        f.write(f"{event} {host}\\n")
sys.addaudithook(_hook)
with open(_LOG, "a") as f:
    f.write("hook installed\\n")
"""


@contextlib.contextmanager
def serve(script, tmp_path):
    """`streamlit run script` from the repository root (its .streamlit/config.toml), the
    audit hook installed; yields (URL, read the hook's log, read the server's output)."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOOK)
    net, out = tmp_path / "net.log", tmp_path / "streamlit.log"
    env = dict(os.environ, PFML_NET_LOG=str(net),
               PYTHONPATH=os.pathsep.join([str(tmp_path / "hook"), str(ROOT)]))
    with serve_app(tmp_path / "runs", out, script, env) as url:
        yield url, lambda: net.read_text() if net.exists() else "", out.read_text


def outside(net_log: str) -> list[str]:
    """The hook's entries that would reach a host other than this machine's loopback."""
    return [line for line in net_log.splitlines()[1:] if line.split(" ", 1)[1] not in LOCAL
            and not line.startswith("socket.connect-udp")]


@pytest.mark.slow  # starts a server
def test_server_start_asks_no_outside_host(tmp_path):
    with serve(ROOT / "app.py", tmp_path) as (_, net, output):
        deadline = time.time() + 60
        while "URL:" not in output() and time.time() < deadline:
            time.sleep(0.2)  # the start banner: printed once any external-IP lookup is done
        assert "URL:" in output(), output()
        assert net().startswith("hook installed")
        assert outside(net()) == [], output()
        assert "External URL" not in output()


@pytest.mark.browser
def test_error_box_links_nowhere(tmp_path, browser):
    (tmp_path / "boom.py").write_text("raise ValueError('boom')\n")
    ctx = browser.new_context()
    page = ctx.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        with serve(tmp_path / "boom.py", tmp_path) as (url, net, _):
            page.goto(url)
            box = page.locator('[data-testid="stException"]').first
            box.wait_for(timeout=60_000)
            assert "ValueError" in box.inner_text()
            assert box.locator("a").count() == 0, box.inner_html()
            assert outside(net()) == []
    finally:
        ctx.close()
    assert all(urlparse(r).hostname in (None, "127.0.0.1") for r in requests), requests


@pytest.mark.slow  # starts a server
def test_a_cross_origin_websocket_makes_the_server_ask_no_outside_host(tmp_path):
    """Streamlit checks a websocket's Origin against the machine's external IP, looked up at
    checkip.amazonaws.com: studio.serve answers None instead."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with serve(ROOT / "app.py", tmp_path) as (url, net, _):
        ws_url = url.replace("http", "ws") + "/_stcore/stream"
        for _ in range(2):
            with pytest.raises(InvalidStatus) as refused:
                connect(ws_url, origin="http://evil.example", open_timeout=10).close()
            assert refused.value.response.status_code == 403
        assert net().startswith("hook installed")
        assert outside(net()) == []
