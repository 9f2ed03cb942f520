"""imgprep: training-ready datasets from images, video and annotations.

The same library as the ``imgprep`` command, called in-process::

    import imgprep

    recipe = imgprep.Recipe.load("recipe.toml")     # or a dict
    plan = recipe.plan()                              # nothing written yet
    print(plan.counts)                                # {'complete': {'train': 700, ...}}
    plan.to_pandas()                                  # one row per planned item
    result = recipe.build("out")                      # the dataset, as `imgprep build`
    for rec in imgprep.read_records("out/complete/recordio/train.rec"):
        print(rec.id, rec.labels, len(rec.image))

Long calls release the GIL, show a progress bar in terminals and notebooks
(``progress=False`` turns it off), and stop with ``KeyboardInterrupt`` on
Ctrl-C. Errors are :class:`ImgprepError` (``UsageError`` for what the command
exits 2 for: settings, recipes, arguments, unreadable files, malformed lines;
``ProblemError`` for bad input data and pushes that left files behind) with
the message the command prints; ``err.path`` and ``err.line`` name the file
where known.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, Union, overload

from . import _native
from ._native import ImgprepError, ProblemError, UsageError

# every imgprep error has these, also one raised by this package's Python
# code (the extension sets them on the errors it raises)
ImgprepError.path = None
ImgprepError.line = None
ImgprepError.result = None

__version__: str = _native.__version__

__all__ = [
    "Recipe",
    "Plan",
    "BuildResult",
    "Record",
    "build",
    "merge",
    "convert",
    "verify",
    "read_records",
    "read_manifest",
    "synth",
    "ImgprepError",
    "UsageError",
    "ProblemError",
    "ImgprepWarning",
]

PathLike = Union[str, "os.PathLike[str]"]


class ImgprepWarning(UserWarning):
    """Something skipped or suspicious (the command's ``warning:`` lines)."""


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    try:
        return bool(shell and shell.get_ipython() and "IPKernelApp" in shell.get_ipython().config)
    except Exception:  # pragma: no cover - odd front ends
        return False


class _Progress:
    """Receives a job's progress: a tqdm bar per stage (the notebook widget in
    Jupyter, a text bar on a terminal), nothing when output is piped."""

    def __init__(self, enabled: Optional[bool], unit: str = "img") -> None:
        if enabled is None:
            enabled = _in_notebook() or sys.stderr.isatty()
        self.enabled = enabled
        self.unit = unit
        self.bar = None

    def begin(self, label: str, total: Optional[int]) -> None:
        self.end()
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=label, unit=self.unit, leave=False, dynamic_ncols=True)

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def warn(self, message: str) -> None:
        warnings.warn(message, ImgprepWarning, stacklevel=_user_stacklevel())

    def end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _user_stacklevel() -> int:
    """The stack level of the first caller outside this package (so that a
    warning points at the user's line)."""
    here = os.path.dirname(os.path.abspath(__file__))
    f, level = sys._getframe(1), 1
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(here):
        f, level = f.f_back, level + 1
    return level


def _progress(p: Any, unit: str = "img") -> Any:
    """``None`` (auto), ``True``/``False``, or an object with ``begin``,
    ``advance``, ``warn`` and ``end`` methods."""
    if p is None or isinstance(p, bool):
        return _Progress(p, unit)
    return p


def _fspath(p: PathLike) -> str:
    return os.fspath(p)


@dataclass(frozen=True)
class BuildResult:
    """What a build, merge or convert did: ``summary`` is the same dict as
    ``imgprep build --json`` prints; ``str(result)`` the lines it prints."""

    summary: Dict[str, Any]
    lines: List[str]

    @property
    def out(self) -> str:
        return self.summary["out"]

    @property
    def dataset(self) -> Dict[str, Any]:
        """Counts, classes, splits and training numbers (the manifest without its file lists)."""
        return self.summary["dataset"]

    @property
    def up_to_date(self) -> bool:
        return bool(self.summary.get("up_to_date"))

    def manifest(self) -> Dict[str, Any]:
        """The whole ``manifest.json`` of the output (a folder or an object-store prefix)."""
        return read_manifest(self.out)

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        return f"BuildResult({self.out!r}, up_to_date={self.up_to_date})"


def _result(text: str) -> BuildResult:
    v = json.loads(text)
    return _pushed(BuildResult(summary=v["summary"], lines=v["lines"]))


def _pushed(res: BuildResult) -> BuildResult:
    """A build or convert into object storage whose push left files behind
    raises :class:`ProblemError` (the command exits 1): the prefix does not
    hold the dataset. ``err.result`` is the :class:`BuildResult`."""
    failed = (res.summary.get("pushed") or {}).get("failed") or []
    if not failed:
        return res
    key, why = failed[0]
    err = ProblemError(
        f"{res.out}: {len(failed)} file(s) could not be pushed, so it does not hold the dataset "
        f"(first: {key}: {why}); summary['pushed']['failed'] lists them"
    )
    err.path, err.line = None, None
    err.result = res
    raise err


class Plan:
    """Which item goes to which split of which variant, as a build would
    write them; nothing decoded or written. Made by :meth:`Recipe.plan`."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data

    @property
    def method(self) -> str:
        """The split method used (``random``, ``stratified``, ``group``, ``source``, ...)."""
        return self._data["method"]

    @property
    def classes(self) -> List[str]:
        return list(self._data["classes"])

    @property
    def num_classes(self) -> int:
        return int(self._data["num_classes"])

    @property
    def counts(self) -> Dict[str, Dict[str, int]]:
        """Items per variant and split: ``{variant: {split: n}}``."""
        return self._data["counts"]

    @property
    def ratios(self) -> Dict[str, Dict[str, float]]:
        """Per split the share asked for (``requested``) and got (``achieved``)."""
        return self._data["ratios"]

    @property
    def skipped(self) -> List[Dict[str, Any]]:
        """Items left out while reading sources and planning, with reasons."""
        return self._data["skipped"]

    def summary(self) -> Dict[str, Any]:
        """Everything but the per-item rows."""
        return {k: v for k, v in self._data.items() if k != "rows"}

    def items(self) -> List[Dict[str, Any]]:
        """One dict per planned item: variant, split, position, item, path,
        labels, group, origin, objects (detection), frame (video)."""
        return self._data["rows"]

    def to_pandas(self) -> "Any":
        """:meth:`items` as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        cols = ["variant", "split", "position", "item", "path", "labels", "group", "origin", "objects", "frame"]
        return pd.DataFrame.from_records(self.items(), columns=cols)

    def shard_counts(self, shard: int, shards: int) -> Dict[str, Dict[str, int]]:
        """Items per variant and split that shard ``shard`` of ``shards`` builds."""
        out: Dict[str, Dict[str, int]] = {}
        for variant, splits in self.counts.items():
            out[variant] = {}
            for split, n in splits.items():
                a, b = _native.shard_range(n, shard, shards)
                out[variant][split] = b - a
        return out

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{v}/{s}={n}" for v, splits in self.counts.items() for s, n in splits.items()
        )
        return f"Plan({self.method}, {self.num_classes} classes, {parts})"


class Recipe:
    """A build recipe: a TOML file, or a dict with the same keys.

    The recipe is read once, by :meth:`load`: later changes to its file do
    not change this object (load it again to take them). Relative paths in
    a file resolve against its folder, in a dict against ``base_dir``
    (default: the current folder when loaded)."""

    def __init__(self, path: str, text: Optional[str], toml: str, sha256: str) -> None:
        self.path = path
        self._text = text
        self.toml = toml
        self.sha256 = sha256

    @classmethod
    def load(cls, source: Union[PathLike, Mapping[str, Any]], *, base_dir: Optional[PathLike] = None) -> "Recipe":
        """Reads and checks a recipe (raises :class:`UsageError` naming the
        file and line of a mistake)."""
        if isinstance(source, Mapping):
            base = os.path.abspath(_fspath(base_dir) if base_dir is not None else os.getcwd())
            # (no such file: messages about the recipe name it so)
            path = os.path.join(base, "<recipe dict>")
            text = json.dumps(_plain(source))
            toml, sha = _native.recipe_info(path, text)
            return cls(path, text, toml, sha)
        path = _fspath(source)
        # the recipe as it is now, standing where it is: plan() and build()
        # use this text, whatever happens to the file or the current folder
        if "://" not in path:
            path = os.path.abspath(path)
        toml, sha = _native.recipe_info(path, None)
        return cls(path, toml, toml, sha)

    def plan(self, *, progress: Any = False) -> Plan:
        """Reads the sources and plans the splits (see :class:`Plan`)."""
        return Plan(json.loads(_native.plan(self.path, self._text, _progress(progress))))

    def build(
        self,
        out: Optional[PathLike] = None,
        *,
        shard: Optional[Tuple[int, int]] = None,
        threads: Optional[int] = None,
        cache_dir: Optional[PathLike] = None,
        force: bool = False,
        drop_cache: bool = False,
        progress: Any = None,
    ) -> BuildResult:
        """``imgprep build``: writes the dataset into ``out`` (a folder, or
        ``s3://``/``az://``/``gs://``; default ``out`` beside the recipe).
        ``shard=(i, n)`` builds slice ``i`` of ``n`` of every split (see
        :meth:`merge`). Re-runs are incremental."""
        if out is None:
            out = os.path.join(os.path.dirname(os.path.abspath(self.path)), "out")
        return _result(
            _native.build(
                self.path,
                self._text,
                _fspath(out),
                shard=tuple(shard) if shard is not None else None,
                threads=threads,
                cache_dir=_fspath(cache_dir) if cache_dir is not None else None,
                force=force,
                drop_cache=drop_cache,
                progress=_progress(progress),
            )
        )

    def merge(
        self,
        out: PathLike,
        shards: Sequence[PathLike],
        *,
        shard_caches: Sequence[PathLike] = (),
        threads: Optional[int] = None,
        cache_dir: Optional[PathLike] = None,
        force: bool = False,
        progress: Any = None,
    ) -> BuildResult:
        """``imgprep merge``: the shard outputs of ``build(shard=(i, n))``
        into the dataset one build gives, byte for byte. Items come from the
        shards' item caches (``shard_caches`` for shards built with their own
        ``cache_dir``)."""
        return _result(
            _native.build(
                self.path,
                self._text,
                _fspath(out),
                threads=threads,
                cache_dir=_fspath(cache_dir) if cache_dir is not None else None,
                force=force,
                merge_from=[_fspath(s) for s in shards],
                merge_caches=[_fspath(s) for s in shard_caches],
                progress=_progress(progress),
            )
        )

    def __repr__(self) -> str:
        return f"Recipe({self.path!r}, sha256={self.sha256[:12]})"


def _plain(v: Any, at: str = "recipe") -> Any:
    """A dict recipe as JSON-able values (paths as strings); a number that is
    not finite is refused naming its key (TOML and JSON have no NaN)."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x, f"{at}[{str(k)!r}]") for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_plain(x, f"{at}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, float) and not math.isfinite(v):
        raise UsageError(f"{at} = {v!r}: a recipe value must be a finite number")
    return v


def _recipe(r: Union["Recipe", PathLike, Mapping[str, Any]]) -> Recipe:
    return r if isinstance(r, Recipe) else Recipe.load(r)


def build(recipe: Union[Recipe, PathLike, Mapping[str, Any]], out: Optional[PathLike] = None, **kwargs: Any) -> BuildResult:
    """:meth:`Recipe.build` of a recipe file, dict or :class:`Recipe`."""
    return _recipe(recipe).build(out, **kwargs)


def merge(
    recipe: Union[Recipe, PathLike, Mapping[str, Any]], out: PathLike, shards: Sequence[PathLike], **kwargs: Any
) -> BuildResult:
    """:meth:`Recipe.merge` of a recipe file, dict or :class:`Recipe`."""
    return _recipe(recipe).merge(out, shards, **kwargs)


@overload
def convert(
    src: PathLike,
    out: PathLike,
    *,
    to: Union[str, Sequence[str]] = "recordio",
    train: float = 1.0,
    validation: float = 0.0,
    test: float = 0.0,
    threads: Optional[int] = None,
    cache_dir: Optional[PathLike] = None,
    force: bool = False,
    progress: Any = None,
    print_recipe: Literal[False] = False,
    **options: Any,
) -> BuildResult: ...


@overload
def convert(
    src: PathLike,
    out: PathLike,
    *,
    to: Union[str, Sequence[str]] = "recordio",
    train: float = 1.0,
    validation: float = 0.0,
    test: float = 0.0,
    threads: Optional[int] = None,
    cache_dir: Optional[PathLike] = None,
    force: bool = False,
    progress: Any = None,
    print_recipe: Literal[True],
    **options: Any,
) -> str: ...


def convert(
    src: PathLike,
    out: PathLike,
    *,
    to: Union[str, Sequence[str]] = "recordio",
    train: float = 1.0,
    validation: float = 0.0,
    test: float = 0.0,
    threads: Optional[int] = None,
    cache_dir: Optional[PathLike] = None,
    force: bool = False,
    progress: Any = None,
    print_recipe: bool = False,
    **options: Any,
) -> Union[BuildResult, str]:
    """``imgprep convert``: a folder (class sub-folders, a TinyImageNet-like
    tree, or recordings with ``labels=``) straight into a dataset in ``out``.
    ``options`` are the command's flags with underscores: ``seed``,
    ``resize`` (``224``, ``"224x224"``), ``center_crop``, ``color``,
    ``color_policy``, ``encoding``, ``quality``, ``exts``, ``preset``,
    ``compression``, ``shard_records``, ``shard_mib``, ``pack_label``,
    ``fail_on_error``, ``unlabelled``, ``labels``, ``unit``, ``frame_base``,
    ``time_reference``. The recipe used is kept in ``out``. Returns a
    :class:`BuildResult`; with ``print_recipe=True`` nothing is built, and
    the recipe's TOML text is returned."""
    formats = [to] if isinstance(to, str) else list(to)
    if not formats:
        raise UsageError("convert: to = []: give one or more output formats (e.g. to=\"recordio\")")
    o = dict(options, src=_fspath(src), to=formats, train=train, validation=validation, test=test)
    v = json.loads(
        _native.convert(
            json.dumps(_plain(o)),
            _fspath(out),
            threads=threads,
            cache_dir=_fspath(cache_dir) if cache_dir is not None else None,
            force=force,
            print_recipe=print_recipe,
            progress=_progress(progress),
        )
    )
    if print_recipe:
        return str(v["recipe"])
    return _pushed(BuildResult(summary=v["result"], lines=v["lines"]))


def verify(path: PathLike, *, threads: Optional[int] = None, progress: Any = None) -> Dict[str, Any]:
    """``imgprep verify``: a build output folder (everything its manifest
    claims), a TFRecord file, or a ``.rec``. The report's ``ok`` is False
    when a problem was found (they are listed, not raised)."""
    return json.loads(_native.verify(_fspath(path), threads=threads, progress=_progress(progress, "file")))


def read_manifest(out: PathLike) -> Dict[str, Any]:
    """The ``manifest.json`` of a build output: a folder, or an object-store
    prefix (``s3://bucket/ds``) a build or push wrote it to, as a dict."""
    out = _fspath(out)
    if "://" in out:
        return json.loads(_native.read_text(out.rstrip("/") + "/manifest.json"))
    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def synth(dir: PathLike, *, classes: int = 3, per_class: int = 20, width: int = 320, height: int = 240, seed: int = 1,
          layout: str = "classes", format: str = "jpg") -> List[str]:
    """Writes a small synthetic dataset (for trying things out), as ``imgprep
    synth``: ``layout`` is ``"classes"`` (class folders and an index CSV),
    ``"multilabel"``, ``"tinyimagenet"``, ``"voc"`` (boxes) or ``"video"``
    (needs ffmpeg; the command's defaults for sessions, chunks and length);
    ``format`` is ``"jpg"`` or ``"png"``. Returns the image files written."""
    return _native.synth(_fspath(dir), classes=classes, per_class=per_class, width=width, height=height, seed=seed,
                         layout=layout, format=format)


@dataclass
class Record:
    """One record of a ``.rec`` or TFRecord file.

    ``labels``: the RecordIO label(s), or a TFRecord's ``image/class/label``
    (or ``label``) values; ``image``: the encoded image bytes (None for a
    TFRecord without ``image/encoded``); ``features``: every feature of a
    TFRecord Example (lists of bytes, floats or ints)."""

    offset: int
    labels: List[float]
    image: Optional[bytes] = field(repr=False)
    id: Optional[int] = None
    packed: bool = False
    features: Optional[Dict[str, list]] = field(default=None, repr=False)

    def __repr__(self) -> str:
        # (the image's bytes are its size here: a notebook cell showing a
        # list of records would print megabytes)
        image = "None" if self.image is None else f"<{len(self.image)} bytes>"
        return (
            f"Record(offset={self.offset}, id={self.id}, labels={self.labels!r}, "
            f"packed={self.packed}, image={image})"
        )

    @property
    def label(self) -> Optional[float]:
        """The single label (None when there are several or none)."""
        return self.labels[0] if len(self.labels) == 1 and not self.packed else None

    def to_array(self) -> "Any":
        """The image as a numpy array of (height, width, channels), also for
        grayscale images (channels 1): the encoded image decoded (needs
        Pillow), or a ``raw`` TFRecord's ``image_raw`` pixels as they are."""
        import io

        import numpy as np

        if self.image is None:
            f = self.features or {}
            raw, h, w, c = (f.get(k) or [None] for k in ("image_raw", "height", "width", "channel"))
            if raw[0] is None or h[0] is None or w[0] is None:
                raise ValueError("this record has no image (no image/encoded, no image_raw)")
            return np.frombuffer(raw[0], dtype=np.uint8).reshape(int(h[0]), int(w[0]), int(c[0] or 3))
        from PIL import Image

        a = np.asarray(Image.open(io.BytesIO(self.image)))
        return a[:, :, None] if a.ndim == 2 else a


def read_records(path: PathLike) -> Iterator[Record]:
    """Yields the records of a ``.rec`` or TFRecord (``.tfrecord``,
    ``.tfrecord.gz``, ``.tfrecord.zz``) file in order. A damaged file raises
    :class:`ProblemError` naming the file and record."""
    for r in _native.RecordReader(_fspath(path)):
        feats = r.get("features")
        if feats is None:
            yield Record(offset=r["offset"], labels=r["labels"], image=r["image"], id=r["id"], packed=r["packed"])
            continue
        labels = feats.get("image/class/label", feats.get("label", []))
        images = feats.get("image/encoded") or []
        yield Record(
            offset=r["offset"],
            labels=[float(x) for x in labels] if isinstance(labels, list) and labels and not isinstance(labels[0], bytes) else [],
            image=images[0] if images else None,
            features=feats,
        )
