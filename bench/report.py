"""Benches write what they measure into docs/performance.md: `python bench/NAME.py --docs`
replaces that bench's section with this run's output, the command and the machine."""
from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import sys
import time
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for stream in self.streams:
            stream.write(s)
        return len(s)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def write_section(name: str, command: str, output: str) -> None:
    """Replace (or append) the section between this bench's markers in DOC."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    body = (f"{begin}\n`{command}`, {time.strftime('%Y-%m-%d')}, {_machine()}:\n\n"
            f"```\n{output.rstrip()}\n```\n{end}")
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else \
        text.rstrip() + f"\n\n## {name}\n{body}\n"
    DOC.write_text(text)


def run(main) -> int:
    """Call main(); with --docs on the command line, also write its output into DOC."""
    docs = "--docs" in sys.argv
    if docs:
        sys.argv.remove("--docs")
    name = Path(sys.argv[0]).stem
    buf = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buf)):
        code = main()
    code = code if isinstance(code, int) else 0
    if docs and code == 0:
        write_section(name, " ".join(["python", f"bench/{name}.py", *sys.argv[1:]]), buf.getvalue())
    return code
