"""What the browser tests do to a page: pick a select box option, type into a field, and
find a point of a drawn map that a click can hit alone (its nearest neighbour >= 8 px away)."""
from __future__ import annotations


def choose(page, label: str, option: str, exact: bool = False) -> None:
    page.get_by_label(label, exact=exact).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True).first
    box.fill(value)
    box.press("Tab")


# A JS function (gd, left, top) -> {px, py, row}: the held-out point of the map drawn in gd
# farthest from any other point, inside the plot area, in the coordinates of an element at
# (left, top); it throws when none is 8 px clear.
ISOLATED_HELD_OUT = """(gd, left, top) => {
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, pts = [];
    gd._fullData.forEach(t => Array.from(t.x).forEach((x, i) => pts.push({
        px: left + xa._offset + xa.l2p(x), py: top + ya._offset + ya.l2p(t.y[i]),
        held: t.legendgroup === 'held-out', row: t.customdata ? t.customdata[i][0] : null})));
    const inside = p => p.px > left + xa._offset + 10 && p.py > top + ya._offset + 10
        && p.px < left + xa._offset + xa._length - 10 && p.py < top + ya._offset + ya._length - 10;
    let best = null, bestGap = 0;
    for (const p of pts.filter(p => p.held && inside(p))) {
        let gap = Infinity;
        for (const q of pts) if (q !== p) gap = Math.min(gap, Math.hypot(p.px - q.px, p.py - q.py));
        if (gap > bestGap) { best = p; bestGap = gap; }
    }
    if (bestGap < 8) throw new Error('no isolated held-out point');
    return best; }"""
