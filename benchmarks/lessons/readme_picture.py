"""The README's picture: the site's Explore page with a test digit, its reconstruction and the ten
templates and contributions, drawn by the built site in headless Chromium and saved as
``docs/figures/explore.png``; ``--view regions``: the page's regions view on its first network (the
segment from the shipped test image ``--sample``, a 0, to ``--target``, a 9, walked in the browser, and
the plane through them and ``--third``, a 1), saved as ``docs/figures/explore_regions.png`` for the
regions page.

    bin/docs && python -m benchmarks.lessons.readme_picture
    python -m benchmarks.lessons.readme_picture --view regions
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.speed.explorer_speed import PAGE, explorer_page, wait_idle
from invlab.io import atomic_write


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", default="docs/_build/html")
    p.add_argument("--sample", default="3", help="which shipped MNIST test image")
    p.add_argument("--view", choices=("explore", "regions"), default="explore")
    p.add_argument("--target", type=int, default=7, help="regions: the shipped test image the segment goes to")
    p.add_argument("--third", type=int, default=5, help="regions: the plane's third test image")
    p.add_argument("--out", default=None, help="default docs/figures/explore.png, or explore_regions.png")
    args = p.parse_args(argv)
    args.out = args.out or f"docs/figures/{'explore' if args.view == 'explore' else 'explore_regions'}.png"
    site = Path(args.site)
    if not (site / PAGE).exists():
        raise SystemExit(f"{site / PAGE} does not exist: build the site first (bin/docs)")
    with explorer_page((site / PAGE).resolve().as_uri(), width=1100, height=1600) as (page, log):
        page.select_option("#invlab-sample", args.sample)
        wait_idle(page)
        page.add_style_tag(content=".back-to-top { display: none !important; }")
        if args.view == "regions":
            page.wait_for_function("() => !document.getElementById('invlab-regions').hidden", timeout=60_000)
            page.evaluate(f"async () => {{ await window.invlabExplorer.walkRegions({args.target}); "
                          f"await window.invlabExplorer.mapPlane({args.target}, {args.third}, 64); }}")
            view = page.locator("#invlab-regions")
            view.scroll_into_view_if_needed()
            atomic_write(args.out, lambda tmp: tmp.write_bytes(view.screenshot(type="png")))
            if log["console"] or log["errors"] or log["remote"]:
                raise SystemExit(f"the page reported problems: {log}")
            print(args.out)
            return
        top = page.locator("#invlab-decomposition").bounding_box()
        bottom = page.locator("#invlab-templates").bounding_box()
        clip = {"x": top["x"] - 8, "y": top["y"] - 8, "width": bottom["width"] + 16,
                "height": bottom["y"] + bottom["height"] - top["y"] + 16}
        atomic_write(args.out, lambda tmp: tmp.write_bytes(page.screenshot(full_page=True, clip=clip, type="png")))
        if log["console"] or log["errors"] or log["remote"]:
            raise SystemExit(f"the page reported problems: {log}")
    print(args.out)


if __name__ == "__main__":
    main()
