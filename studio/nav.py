"""Keep the app's own navigation (app.py's st.navigation) even when a server's first visitor
opens a page link. Streamlit runs a top-level pages/ folder in its pages-folder multipage mode
until app.py has called st.navigation once; a fresh server whose first request is, say, a
shared playground URL would otherwise stay in that mode for everyone: file names in the
sidebar, no wide layout. Every page calls use_app_navigation() before drawing anything."""
import streamlit as st


def use_app_navigation() -> None:
    """In the pages-folder mode: switch the server to app.py's navigation and rerun, which
    keeps the URL (page and query parameters). Otherwise (and under AppTest) nothing."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # Streamlit moved its internals: nothing to correct
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()
