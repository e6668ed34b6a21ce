"""The README's picture: the site's Explore page with a test digit, its reconstruction and the ten
templates and contributions, drawn by the built site in headless Chromium and saved as
``docs/figures/explore.png``.

    bin/docs && python -m benchmarks.lessons.readme_picture
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
    p.add_argument("--out", default="docs/figures/explore.png")
    args = p.parse_args(argv)
    site = Path(args.site)
    if not (site / PAGE).exists():
        raise SystemExit(f"{site / PAGE} does not exist: build the site first (bin/docs)")
    with explorer_page((site / PAGE).resolve().as_uri(), width=1100, height=1600) as (page, log):
        page.select_option("#invlab-sample", args.sample)
        wait_idle(page)
        page.add_style_tag(content=".back-to-top { display: none !important; }")
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
