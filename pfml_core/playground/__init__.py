"""The 2-D playground: toy scenes and presets, descent on the total energy, the URL-bound
state table and PNG / GIF / CSV exports."""
from pfml_core.playground.scene import PRESETS, Scene, SceneConfig, build_scene
from pfml_core.playground.descent import Dynamics, Frame
from pfml_core.playground import descent, export, url_state

__all__ = ["Dynamics", "Frame", "PRESETS", "Scene", "SceneConfig", "build_scene", "descent",
           "export", "url_state"]
