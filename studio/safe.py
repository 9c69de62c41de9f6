"""Untrusted text in Streamlit's markdown elements. st.error, st.warning, st.info,
st.success, st.caption and st.markdown render their text as Markdown, so a file name, a CSV
header, a URL value or an error message could show a live link or fetch an image. `say`
shows such text as plain words: one line, absolute server paths cut to their base name,
every Markdown and HTML character escaped. Fixed text of the app's own may stay Markdown:
pass it as `before`."""
from __future__ import annotations

import re

import streamlit as st

KINDS = ("error", "warning", "info", "success", "caption", "markdown", "toast")
LIMIT = 400  # characters of untrusted text shown
# every ASCII punctuation character: CommonMark lets each be backslash-escaped, and escaping
# all of them also stops links, images, HTML, math ($), emoji and colour directives (:red[])
_MARKDOWN = re.compile(r"([!-/:-@\[-`{-~])")
# GFM autolinks bare URLs and e-mail addresses even with ':' escaped: a zero-width space
# after the scheme / 'www' and before '@' stops that and reads the same
_AUTOLINK = re.compile(r"(?i)(\b(?:https?|ftp|mailto|www)(?=[:.])|(?=@))")
ZWSP = "\u200b"
# an absolute POSIX path of two or more parts (not the middle of a URL, of a word like
# R@1/R@2, or an HTML tag like </b>)
_ABS_PATH = re.compile(r"(?<![\w.~:/@<-])(?:/[^\s/'\"`,;()\[\]{}<>]+){2,}/?")


def scrub_paths(text: str) -> str:
    """Absolute paths -> their base name ('/srv/runs/_uploads/ab.npz' -> 'ab.npz')."""
    return _ABS_PATH.sub(lambda m: m.group().rstrip("/").rsplit("/", 1)[-1] or "/", text)


def one_line(text, limit: int = LIMIT) -> str:
    """Untrusted text for plain-text places (tables, CSV): its first line, printable
    characters only, absolute paths cut to their base name, at most `limit` characters."""
    lines = str(text).strip().splitlines()
    line = "".join(ch if ch.isprintable() else " " for ch in (lines[0] if lines else ""))
    line = scrub_paths(line)
    return line if len(line) <= limit else line[:limit] + "..."


def plain(text, limit: int = LIMIT) -> str:
    """Untrusted text as inert Markdown: one_line(text), with every special character
    escaped and autolinks broken."""
    line = one_line(text, limit)
    return _MARKDOWN.sub(r"\\\1", _AUTOLINK.sub(lambda m: m.group() + ZWSP, line))


def say(kind: str, text, before: str = "", where=None, **kwargs) -> None:
    """Show untrusted `text` with st.<kind> (or `where`.<kind>: a column, a container),
    after the app's own Markdown `before`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    getattr(where if where is not None else st, kind)(before + plain(text), **kwargs)
