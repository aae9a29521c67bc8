"""Face image datasets and verification pairs: folder-per-identity sets, LFW, CALFW/CPLFW.

Every loader records unreadable files as counted skips (``FaceDataset.skipped``) instead of
crashing, and every pair list is checked against the images that really exist.
"""
from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from facexai.cache import atomic_write, file_digest

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
PAIR_COLUMNS = ["fold", "name_a", "path_a", "name_b", "path_b", "same"]
LFW_URL = "http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz"
# MD5 of the official lfw-deepfunneled.tgz as published in torchvision.datasets.LFW (whose
# pairs.txt checksum matches the file in ../shared/data/lfw); not re-downloaded here.
LFW_MD5 = "68331da3eb755a505a502b5aacb3c201"
PAIR_LIST_FILES = {"calfw": "pairs_CALFW.txt", "cplfw": "pairs_CPLFW.txt"}
_PAIR_LIST_IMAGE_DIRS = ("aligned images", "aligned_images", "images")


class DatasetMissing(FileNotFoundError):
    """A data set's folder or pair list is not on this machine (notebooks mark it 'not available')."""


@dataclass
class FaceDataset:
    """Images grouped by identity: names sorted, each name's files sorted."""

    root: Path
    identities: dict[str, list[Path]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def n_identities(self) -> int:
        return len(self.identities)

    @property
    def n_images(self) -> int:
        return sum(len(files) for files in self.identities.values())

    def paths(self) -> list[Path]:
        """All image paths, identity by identity."""
        return [p for files in self.identities.values() for p in files]

    def labels(self) -> list[str]:
        """The identity of each entry of :meth:`paths`."""
        return [name for name, files in self.identities.items() for _ in files]

    def subset(self, names: Iterable[str], max_images: int | None = None) -> FaceDataset:
        """The named identities only (each with its first ``max_images`` files)."""
        names = list(names)
        unknown = [n for n in names if n not in self.identities]
        if unknown:
            raise KeyError(f"{len(unknown)} identities not in {self.root}: {unknown[:5]}")
        return FaceDataset(self.root, {n: self.identities[n][:max_images] for n in sorted(names)},
                           list(self.skipped))


# What Pillow raises for files it cannot decode, including its decompression-bomb guard
# (an image above Image.MAX_IMAGE_PIXELS x 2 pixels, e.g. a 15000 x 12500 PNG).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """uint8 RGB of any Pillow image; 16-bit and 32-bit integer images are scaled, not clipped, to 0..255."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(img, dtype=np.float64)  # 16-bit PNGs open as "I;16" or "I", values 0..65535
        grey = np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(img.convert("RGB"))


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3): greyscale, palette, RGBA and 16-bit are converted."""
    try:
        with Image.open(path) as img:
            return _to_rgb(ImageOps.exif_transpose(img))
    except _DECODE_ERRORS as err:
        raise ValueError(f"cannot read image {path}: {_decode_reason(err)}") from err


def _decode_reason(err: Exception) -> str:
    if isinstance(err, Image.DecompressionBombError):
        return f"image too large for Pillow's decompression-bomb guard: {err}"
    return f"{type(err).__name__}: {err}"


def _image_problem(path: Path) -> str | None:
    """Why a file cannot be used as an image (full decode), or None when it decodes."""
    try:
        with Image.open(path) as img:
            img.load()
    except _DECODE_ERRORS as err:
        return f"unreadable image: {_decode_reason(err)}"
    return None


def _name_problem(path: Path) -> str | None:
    """Why a file or folder name cannot be used (not valid UTF-8 bytes), or None."""
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        return f"name is not valid UTF-8 ({os.fsencode(path.name)!r}): rename it"
    return None


def load_folder_dataset(root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                        verify: bool = True) -> FaceDataset:
    """Load a folder-per-identity image set; what cannot be used lands in ``skipped`` with the reason.

    Skipped: corrupt or non-image files, files too large to decode, names that are not UTF-8,
    folders nested inside a person's folder (not read) and person folders without any file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetMissing(f"dataset folder {root} does not exist")
    exts = tuple(e.lower() for e in extensions)
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    identities: dict[str, list[Path]] = {}
    skipped: list[tuple[Path, str]] = []
    candidates: list[tuple[str, Path]] = []
    for folder in folders:
        if problem := _name_problem(folder):
            skipped.append((folder, f"folder {problem}"))
            continue
        entries = sorted(f for f in folder.iterdir() if not f.name.startswith("."))
        if not entries:
            skipped.append((folder, "empty folder"))
        for f in entries:
            if f.is_dir():
                skipped.append((f, f"nested folder not read (images must sit directly in {root.name}/<Name>/)"))
            elif problem := _name_problem(f):
                skipped.append((f, f"file {problem}"))
            elif f.suffix.lower() in exts:
                candidates.append((folder.name, f))
            else:
                skipped.append((f, f"extension not in {exts}"))
    for name, f in tqdm(candidates, desc=f"verify {root.name}", disable=not verify or len(candidates) < 500):
        problem = _image_problem(f) if verify else None
        if problem:
            skipped.append((f, problem))
        else:
            identities.setdefault(name, []).append(f)
    if not identities:
        raise ValueError(f"{root} holds no identity folders with images {exts} "
                         f"(expected <root>/<Name>/<image>; {len(folders)} folders, {len(skipped)} skipped entries)")
    if skipped:
        log.warning("%s: skipped %d entries, e.g. %s", root, len(skipped),
                    "; ".join(f"{p.name} ({why})" for p, why in skipped[:3]))
    return FaceDataset(root, identities, skipped)


def load_lfw(root: str | os.PathLike, verify: bool = True) -> FaceDataset:
    """Load LFW deep-funneled from the ``lfw-deepfunneled`` folder or its parent."""
    root = Path(root)
    if (root / "lfw-deepfunneled").is_dir():
        root = root / "lfw-deepfunneled"
    return load_folder_dataset(root, verify=verify)


def _check_pairs(pairs: pd.DataFrame, dataset: FaceDataset, source: Path,
                 on_missing: Literal["raise", "skip"]) -> pd.DataFrame:
    """Keep pairs whose two images are in ``dataset``; raise (or log and drop) the others."""
    if on_missing not in ("raise", "skip"):
        raise ValueError(f"on_missing must be 'raise' or 'skip', not {on_missing!r}")
    known = {str(p) for p in dataset.paths()}
    ok = pairs.path_a.isin(known) & pairs.path_b.isin(known)
    if ok.all():
        return pairs.reset_index(drop=True)
    bad = pairs[~ok]
    missing = sorted({p for p in pd.concat([bad.path_a, bad.path_b]) if p not in known})
    msg = (f"{source}: {len(bad)} of {len(pairs)} pairs name images not in {dataset.root} "
           f"({len(missing)} images missing or unreadable, first: {[Path(p).name for p in missing[:5]]})")
    if on_missing == "raise":
        raise ValueError(msg + "; set on_missing='skip' (notebook 00 parameter, Config.on_missing) "
                               "to drop those pairs")
    log.warning("%s; skipped those pairs", msg)
    return pairs[ok].reset_index(drop=True)


def _pair_lines(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank lines of a pair list as (1-based line number, fields); ValueError if there are none."""
    blob = path.read_bytes()
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as err:
        line = blob[:err.start].count(b"\n") + 1
        raise ValueError(f"{path} line {line}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    lines = [(n, ln.split()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: the pair list is empty")
    return lines


def _int_field(path: Path, line: int, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{path} line {line}: {what} must be an integer, got {value!r}") from None


def read_lfw_pairs(pairs_path: str | os.PathLike, dataset: FaceDataset,
                   on_missing: Literal["raise", "skip"] = "raise") -> pd.DataFrame:
    """Parse an LFW pair list (View 2 ``10 300`` header, or View 1 ``N``) into PAIR_COLUMNS.

    Every format error names the file and line; a pair of an image with itself is an error.
    """
    pairs_path = Path(pairs_path)
    if not pairs_path.is_file():
        raise DatasetMissing(f"LFW pair list {pairs_path} does not exist")
    lines = _pair_lines(pairs_path)
    first, head = lines[0]
    if len(head) not in (1, 2):
        raise ValueError(f"{pairs_path} line {first}: the header must be `pairs` (View 1) or "
                         f"`folds pairs_per_fold` (View 2), got {' '.join(head)!r}")
    header = [_int_field(pairs_path, first, x, "the header") for x in head]
    n_folds, n_per = (1, header[0]) if len(header) == 1 else header
    body = lines[1:]
    if len(body) != 2 * n_folds * n_per:
        raise ValueError(f"{pairs_path}: header says {n_folds} folds x 2 x {n_per} pairs, "
                         f"found {len(body)} pair lines")
    rows = []
    for k, (line, tok) in enumerate(body):
        fold, same = k // (2 * n_per), (k % (2 * n_per)) < n_per
        if same and len(tok) == 3:
            a, b = (tok[0], tok[1]), (tok[0], tok[2])
        elif not same and len(tok) == 4:
            a, b = (tok[0], tok[1]), (tok[2], tok[3])
        else:
            raise ValueError(f"{pairs_path} line {line}: expected "
                             f"{'`name i j`' if same else '`name1 i name2 j`'}, got {' '.join(tok)!r}")
        a, b = ((name, _int_field(pairs_path, line, i, "an image number")) for name, i in (a, b))
        if a == b:
            raise ValueError(f"{pairs_path} line {line}: pairs image {a[0]} {a[1]} with itself")
        rows.append((fold, a[0], str(dataset.root / a[0] / f"{a[0]}_{a[1]:04d}.jpg"),
                     b[0], str(dataset.root / b[0] / f"{b[0]}_{b[1]:04d}.jpg"), same))
    return _check_pairs(pd.DataFrame(rows, columns=PAIR_COLUMNS), dataset, pairs_path, on_missing)


def _genuine_pairs(rng: np.random.Generator, ids: dict[str, list[Path]], n: int) -> list[tuple]:
    """``n`` distinct same-identity pairs, taken round-robin over identities so none dominates."""
    pools = {}
    for name, files in ids.items():
        combos = [(files[i], files[j]) for i in range(len(files)) for j in range(i + 1, len(files))]
        if combos:
            pools[name] = [combos[k] for k in rng.permutation(len(combos))]
    order = [list(pools)[k] for k in rng.permutation(len(pools))]
    out: list[tuple] = []
    depth = 0
    while len(out) < n:
        for name in order:
            if depth < len(pools[name]) and len(out) < n:
                pa, pb = pools[name][depth]
                out.append((name, pa, name, pb))
        depth += 1
    return out


def _impostor_pairs(rng: np.random.Generator, ids: dict[str, list[Path]], n: int) -> list[tuple]:
    """``n`` distinct different-identity pairs, cycling over shuffled identity pairs."""
    names = list(ids)
    combos = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    order = rng.permutation(len(combos))
    seen: set[tuple[Path, Path]] = set()
    out: list[tuple] = []
    while len(out) < n:
        for k in order:
            a, b = combos[k] if rng.random() < 0.5 else combos[k][::-1]
            pa, pb = ids[a][rng.integers(len(ids[a]))], ids[b][rng.integers(len(ids[b]))]
            if (pa, pb) not in seen and (pb, pa) not in seen:
                seen.add((pa, pb))
                out.append((a, pa, b, pb))
                if len(out) == n:
                    break
    return out


def make_pairs(dataset: FaceDataset, n_folds: int = 10, pairs_per_fold: int = 600,
               seed: int = 0) -> pd.DataFrame:
    """Balanced genuine/impostor pairs in folds of disjoint identities (like LFW View 2), from ``seed``."""
    if pairs_per_fold < 2 or pairs_per_fold % 2:
        raise ValueError(f"pairs_per_fold must be an even number >= 2, not {pairs_per_fold}")
    rng = np.random.default_rng(seed)
    multi = [n for n, f in dataset.identities.items() if len(f) >= 2]
    single = [n for n, f in dataset.identities.items() if len(f) < 2]
    if len(multi) < n_folds or len(dataset.identities) < 2 * n_folds:
        raise ValueError(f"{dataset.root}: {len(multi)} identities with >= 2 images and "
                         f"{len(dataset.identities)} in all cannot fill {n_folds} folds of disjoint "
                         f"identities; use fewer folds")
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    for group in (multi, single):
        for k, idx in enumerate(rng.permutation(len(group))):
            folds[k % n_folds].append(group[idx])
    rows = []
    for fold, names in enumerate(folds):
        ids = {n: dataset.identities[n] for n in sorted(names)}
        n_genuine = sum(len(f) * (len(f) - 1) // 2 for f in ids.values())
        n_impostor = (sum(len(f) for f in ids.values()) ** 2 - sum(len(f) ** 2 for f in ids.values())) // 2
        n = min(pairs_per_fold // 2, n_genuine, n_impostor)
        if n < pairs_per_fold // 2:
            log.warning("fold %d: only %d genuine and %d impostor pairs (asked %d each)",
                        fold, n, n, pairs_per_fold // 2)
        for a, pa, b, pb in _genuine_pairs(rng, ids, n) + _impostor_pairs(rng, ids, n):
            rows.append((fold, a, str(pa), b, str(pb), a == b))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _pair_list_root(root: Path, kind: str) -> tuple[Path, Path]:
    """The folder holding the pair list (``root`` or ``root/<kind>``) and its image folder."""
    pair_file = PAIR_LIST_FILES[kind]
    for base in (root, root / kind, root / kind.upper()):
        if (base / pair_file).is_file():
            for sub in _PAIR_LIST_IMAGE_DIRS:
                if (base / sub).is_dir():
                    return base, base / sub
            return base, base
    raise DatasetMissing(f"{kind.upper()} is not available: no {pair_file} in {root} or {root / kind} "
                         f"(get the public release and unpack it there)")


def load_pair_list_dataset(root: str | os.PathLike, kind: Literal["calfw", "cplfw"] = "calfw",
                           verify: bool = True, on_missing: Literal["raise", "skip"] = "raise",
                           n_folds: int = 10) -> tuple[FaceDataset, pd.DataFrame]:
    """Load CALFW/CPLFW: a flat folder of ``Name_NNNN.jpg`` plus ``pairs_<KIND>.txt``."""
    if kind not in PAIR_LIST_FILES:
        raise ValueError(f"kind must be one of {sorted(PAIR_LIST_FILES)}, not {kind!r}")
    base, image_dir = _pair_list_root(Path(root), kind)
    identities: dict[str, list[Path]] = {}
    skipped: list[tuple[Path, str]] = []
    for f in sorted(image_dir.iterdir()):
        if f.suffix.lower() not in IMAGE_EXTENSIONS or f.name.startswith("."):
            continue
        problem = _name_problem(f) or (_image_problem(f) if verify else None)
        if problem:
            skipped.append((f, problem))
        else:
            identities.setdefault(f.stem.rsplit("_", 1)[0], []).append(f)
    dataset = FaceDataset(image_dir, identities, skipped)
    pair_path = base / PAIR_LIST_FILES[kind]
    lines = _pair_lines(pair_path)
    bad = next(((n, t) for n, t in lines if len(t) != 2), None)
    if bad:
        raise ValueError(f"{pair_path} line {bad[0]}: expected `name_NNNN.jpg label`, got {' '.join(bad[1])!r}")
    if len(lines) % 2:
        raise ValueError(f"{pair_path}: {len(lines)} lines, expected two per pair (an even number)")
    rows = []
    n_pairs = len(lines) // 2
    for k in range(n_pairs):
        (na, (fa, la)), (nb, (fb, lb)) = lines[2 * k], lines[2 * k + 1]
        la, lb = _int_field(pair_path, na, la, "the label"), _int_field(pair_path, nb, lb, "the label")
        if (la != 0) != (lb != 0):
            raise ValueError(f"{pair_path} lines {na}-{nb}: labels {la} and {lb} disagree")
        if fa == fb:
            raise ValueError(f"{pair_path} lines {na}-{nb}: pairs image {fa} with itself")
        name_a, name_b = Path(fa).stem.rsplit("_", 1)[0], Path(fb).stem.rsplit("_", 1)[0]
        rows.append((k * n_folds // n_pairs, name_a, str(image_dir / fa), name_b, str(image_dir / fb), la != 0))
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    mislabelled = int(((pairs.name_a == pairs.name_b) != pairs.same).sum())
    if mislabelled:
        log.warning("%s: %d pairs whose label disagrees with the file names", pair_path, mislabelled)
    return dataset, _check_pairs(pairs, dataset, pair_path, on_missing)


def select_identities(dataset: FaceDataset, n: int, min_images: int = 1, seed: int = 0) -> list[str]:
    """``n`` identities with at least ``min_images`` images, drawn from ``seed`` (sorted names)."""
    eligible = [name for name, files in dataset.identities.items() if len(files) >= min_images]
    if len(eligible) <= n:
        if len(eligible) < n:
            log.warning("only %d identities in %s have >= %d images (asked for %d): taking all of them",
                        len(eligible), dataset.root, min_images, n)
        return eligible
    picked = np.random.default_rng(seed).choice(len(eligible), size=n, replace=False)
    return sorted(eligible[i] for i in picked)


def file_md5(path: str | os.PathLike) -> str:
    """Hex MD5 of a file (the checksum LFW's archives are published with)."""
    return file_digest(path, "md5")


def _download(url: str, path: Path) -> None:
    """Stream ``url`` into ``path`` atomically, with a progress bar."""
    def write(tmp: Path) -> None:
        with urllib.request.urlopen(url) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))

    atomic_write(path, write)


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract only regular files and folders that stay inside ``dest`` (no traversal, no links)."""
    dest_resolved = dest.resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            target = (dest / m.name).resolve()
            if not (m.isfile() or m.isdir()) or os.path.isabs(m.name) or not target.is_relative_to(dest_resolved):
                raise ValueError(f"{archive}: refusing unsafe member {m.name!r}")
        tar.extractall(dest, members=members, filter="data")


def fetch_lfw(dest: str | os.PathLike, url: str = LFW_URL, md5: str = LFW_MD5) -> Path:
    """Download (only if absent), verify by MD5 and extract LFW into ``dest``; return the image folder."""
    dest = Path(dest)
    archive_name = url.rsplit("/", 1)[-1]
    folder = dest / archive_name.split(".")[0]
    if folder.is_dir():
        return folder
    archive = dest / archive_name
    if not archive.is_file():
        log.info("downloading %s to %s", url, archive)
        _download(url, archive)
    got = file_md5(archive)
    if got != md5:
        raise ValueError(f"{archive}: MD5 {got} does not match the expected {md5}; the file was left "
                         f"in place: delete it to download again")
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".{folder.name}."))
    try:
        _safe_extract(archive, tmp)
        if not (tmp / folder.name).is_dir():
            raise ValueError(f"{archive} does not hold the folder {folder.name}/")
        os.replace(tmp / folder.name, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
