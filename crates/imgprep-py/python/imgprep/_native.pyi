"""Type hints of the Rust extension (imgprep._native); use the `imgprep` API instead."""

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from imgprep import BuildResult

__version__: str

class ImgprepError(Exception):
    path: Optional[str]
    line: Optional[int]
    # a build or convert into object storage whose push left files behind:
    # its result (None for every other error)
    result: Optional[BuildResult]

class UsageError(ImgprepError): ...
class ProblemError(ImgprepError): ...

def cli_main(argv: List[str]) -> int: ...
def recipe_info(path: str, text: Optional[str] = None) -> Tuple[str, str]: ...
def plan(path: str, text: Optional[str] = None, progress: Any = None, outs: Optional[List[str]] = None) -> str: ...
def shard_range(len: int, i: int, n: int) -> Tuple[int, int]: ...
def build(
    path: str,
    text: Optional[str],
    out: str,
    shard: Optional[Tuple[int, int]] = None,
    threads: Optional[int] = None,
    cache_dir: Optional[str] = None,
    force: bool = False,
    drop_cache: bool = False,
    merge_from: Sequence[str] = ...,
    merge_caches: Sequence[str] = ...,
    progress: Any = None,
) -> str: ...
def convert(
    options: str,
    out: str,
    threads: Optional[int] = None,
    cache_dir: Optional[str] = None,
    force: bool = False,
    print_recipe: bool = False,
    progress: Any = None,
) -> str: ...
def verify(path: str, threads: Optional[int] = None, progress: Any = None) -> str: ...
def synth(
    dir: str,
    classes: int = 3,
    per_class: int = 20,
    width: int = 320,
    height: int = 240,
    seed: int = 1,
    layout: str = "classes",
    format: str = "jpg",
) -> List[str]: ...
def push_dir(dir: str, uri: str, progress: Any = None) -> str: ...
def pull_prefix(uri: str, dir: str, threads: int = 8) -> Tuple[int, int]: ...
def read_text(path: str) -> str: ...
def check_out(out: str, force: bool = False) -> None: ...

class RecordReader:
    def __init__(self, path: str) -> None: ...
    def __iter__(self) -> Iterator[Dict[str, Any]]: ...
    def __next__(self) -> Dict[str, Any]: ...
