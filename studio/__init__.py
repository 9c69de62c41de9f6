"""App-side helpers for the Streamlit pages (may import streamlit; pfml_core never does)."""
