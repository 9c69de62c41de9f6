"""The 2-D playground: toy scenes and presets, descent on the total energy, recorded movies
of it for the browser, the URL-bound state table, the guided lesson and the
exports (PNG / GIF / MP4 of the whole figure, CSV of the scene)."""
from pfml_core.playground import descent, export, lesson, movie, url_state
from pfml_core.playground.descent import Dynamics, Frame
from pfml_core.playground.movie import Movie
from pfml_core.playground.scene import PRESETS, Scene, SceneConfig, build_scene, preset_config

__all__ = ["Dynamics", "Frame", "Movie", "PRESETS", "Scene", "SceneConfig", "build_scene",
           "descent", "export", "lesson", "movie", "preset_config", "url_state"]
