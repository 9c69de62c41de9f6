"""PFML Studio: navigation only. Each page in pages/ also runs on its own."""
from pathlib import Path

import streamlit as st
import torch

# This process serves pages and computes small scenes (playground chunks, decay curves), where
# a second thread gains nothing and takes the core the server loop needs to send the first
# frame. Training, maps and lab grids run in their own processes with their own threads.
torch.set_num_threads(1)

PAGES = {  # section -> (file, title, icon)
    "Learn": [("pages/home.py", "Home", ":material/home:"),
              ("pages/lesson.py", "Lesson", ":material/school:"),
              ("pages/playground.py", "Field playground", ":material/scatter_plot:"),
              ("pages/decay_explorer.py", "Decay explorer", ":material/show_chart:")],
    "Train": [("pages/train.py", "Train a model", ":material/model_training:"),
              ("pages/noise_lab.py", "Label-noise lab", ":material/science:"),
              ("pages/sweep.py", "Hyperparameter sweep", ":material/tune:")],
}

root = Path(__file__).parent
# a file, served by this server: a :material/...: icon is fetched from fonts.gstatic.com, and an
# emoji is drawn with whatever emoji font the visitor's machine has (none on some classroom PCs)
st.set_page_config(page_title="PFML Studio", page_icon=root / "assets" / "icon.png", layout="wide")
nav = {section: [st.Page(f, title=t, icon=i, default=(f == "pages/home.py"))
                 for f, t, i in items if (root / f).exists()]
       for section, items in PAGES.items()}
st.navigation({s: p for s, p in nav.items() if p}).run()
