"""Students without browsers: a Tab speaks Streamlit's own websocket protocol (BackMsg /
ForwardMsg protobufs on /_stcore/stream) as the frontend does, asking for a page's script run
and widget reruns and timing each to its script_finished; nothing is rendered. `student` is
what one pupil does on the lesson or the playground; `classroom` runs many at once."""
from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

DONE = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")
PLAYGROUND = "pg_preset=label_noise"  # the query the class opens the playground with
WIDGETS = {"slider", "button", "selectbox", "checkbox", "number_input", "radio"}


class Tab:
    """One session on one page: `await open()`, `await run()` (the page's first run),
    `await run(widget_state)` for each interaction, `await close()`. Keeps the widgets of the
    latest run by key, the errors the page showed and the bytes it received."""

    def __init__(self, url: str, page: str, query: str = ""):
        self.uri = url.replace("http", "ws", 1) + "/_stcore/stream"
        self.page, self.query, self.page_hash = page, query, ""
        self.widgets: dict[str, object] = {}
        self.errors: list[str] = []
        self.received = 0
        self._finished: asyncio.Future | None = None
        self.charts = 0  # plotly_chart deltas of the current run

    async def open(self) -> None:
        # the frontend's subprotocols are ["streamlit", xsrf token, session to resume]; without
        # a token the server skips only the auth cookie. Figures with their animation frames
        # exceed the client's 1 MiB default message limit.
        self.ws = await websockets.connect(self.uri, subprotocols=["streamlit"], max_size=None,
                                           open_timeout=60, ping_interval=None)
        self._reader = asyncio.create_task(self._read())

    async def run(self, *changed: WidgetState, timeout: float = 120.0) -> float:
        """Ask for a rerun with these widget values (none: the page's run); seconds until it
        finished. Widgets not sent keep their value on the server, as they do for the frontend."""
        state = ClientState(query_string=self.query, page_script_hash=self.page_hash,
                            page_name="" if self.page_hash else self.page)
        state.widget_states.widgets.extend(changed)
        self._finished, self.charts = asyncio.get_running_loop().create_future(), 0
        t0 = time.perf_counter()
        await self.ws.send(BackMsg(rerun_script=state).SerializeToString())
        await asyncio.wait_for(asyncio.shield(self._finished), timeout)
        return time.perf_counter() - t0

    def widget(self, key: str):
        """The widget proto of the latest run whose user key is `key`, or None."""
        return self.widgets.get(key)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.received += len(raw)
                self._on(ForwardMsg.FromString(raw))
        except websockets.ConnectionClosed as err:
            if self._finished and not self._finished.done():
                self._finished.set_exception(err)

    def _on(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "navigation":  # st.navigation's page; new_session's hash is the main script's
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":  # the page wrote its URL: the next run sends it back
            self.query = msg.page_info_changed.query_string
        elif kind == "page_not_found":
            self.errors.append(f"page not found: {msg.page_not_found.page_name}")
        elif kind == "delta":
            el = msg.delta.new_element
            what = el.WhichOneof("type") if msg.delta.HasField("new_element") else None
            if what == "exception":
                self.errors.append(f"{self.page}: {el.exception.type}: {el.exception.message[:150]}")
            elif what == "plotly_chart":
                self.charts += 1
            elif what in WIDGETS:
                w = getattr(el, what)
                self.widgets[w.id.rsplit("-", 1)[-1]] = w  # ids end with "-<user key>"
        elif kind == "script_finished" and self._finished and not self._finished.done():
            if msg.script_finished == DONE:
                self._finished.set_result(None)
            elif msg.script_finished != ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN"):
                self._finished.set_exception(RuntimeError(f"script finished: {msg.script_finished}"))


def slider_to(w, value: float) -> WidgetState:
    """The state a user's slider move sends (every slider's value is a list of doubles)."""
    s = WidgetState(id=w.id)
    s.double_array_value.data.append(value)
    return s


def click(w) -> WidgetState:
    return WidgetState(id=w.id, trigger_value=True)


async def student(i: int, url: str, leave: threading.Event, spread: float, think) -> dict:
    """One student: arrives within `spread` s, opens the page (its first run), makes three
    changes `think` s apart (lesson: Next, Next, Back; playground: decay alpha to 3.5/4/4.5,
    the class shown to 1, alpha back to 3), then stays connected until `leave`."""
    rng, lesson = random.Random(i), i % 2 == 0
    r = {"page": "lesson" if lesson else "playground", "runs": [], "errors": []}
    moves = ([("lesson_next", None)] * 2 + [("lesson_back", None)] if lesson else
             [("pg_alpha", 3.5 + 0.5 * (i // 2 % 3)), ("pg_field_class", 1.0), ("pg_alpha", 3.0)])
    await asyncio.sleep(rng.uniform(0, spread))
    tab = Tab(url, r["page"], "" if lesson else PLAYGROUND)
    try:
        t0, start = time.time(), time.perf_counter()
        await tab.open()
        await tab.run(timeout=300)  # the server's very first run imports torch and the app
        r["first"] = time.perf_counter() - start
        r["runs"].append((t0, r["first"]))
        charts = [tab.charts]
        for key, to in moves:
            await asyncio.sleep(rng.uniform(*think))
            w, t = tab.widget(key), time.time()
            r["runs"].append((t, await tab.run(click(w) if to is None else slider_to(w, to))))
            charts.append(tab.charts)
        if 0 in charts:
            r["errors"].append(f"{r['page']} {i}: runs without a chart: {charts}")
        while not leave.is_set():
            await asyncio.sleep(0.2)
    except Exception as err:  # one student's failure is a finding, not the end of the bench
        r["errors"].append(f"{r['page']} {i}: {type(err).__name__}: {err}"[:200])
    finally:
        with contextlib.suppress(Exception):
            await tab.close()
    r["errors"] += tab.errors
    r["received"] = tab.received
    return r


async def classroom(url: str, n: int, leave: threading.Event, spread: float, think) -> list[dict]:
    return list(await asyncio.gather(*(student(i, url, leave, spread, think) for i in range(n))))


async def rehearse(url: str) -> list[dict]:
    """The teacher's run-through, one tab at a time: every scene the class will ask for is
    cached before the baseline, so what stays after the class is what its sessions left."""
    done = threading.Event()
    done.set()
    return [await student(i, url, done, 0.0, (0.0, 0.0)) for i in (0, 1, 3, 5)]


async def reap(url: str) -> None:
    """Streamlit drops sessions past their TTL only when it stores another: one more tab
    that connects and leaves makes it do so, as the next visitor would."""
    tab = Tab(url, "lesson")
    await tab.open()
    await tab.close()
