"""Scale out: batches of whole program calls on Ray actors, one long-lived worker per GPU.

    from dfgraph.distributed import map_calls
    results = map_calls(build, jobs, workers=4, gpus_per_worker=1)   # results[k] is build()(**jobs[k])

The unit of distribution is one program call: streams, fusion and locals stay inside a worker. `build` (a
picklable zero-argument callable, or a `MODULE:ATTR` string) is what is shipped; each worker (a Ray actor)
calls it once, compiles what it returns once, and then serves calls. The driver calls `build` once too, to
check every job against the program's input ports before anything is shipped (that costs one build, one
compile and one lowering on the driver). Without Ray installed, or with `workers=0`, the same call runs in
this process. `dfgraph run` (the command line) writes each job's result to a file as it arrives.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import json
import os
import pickle
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from dfgraph.errors import BlockError, GraphError, InputError, exception_text

__all__ = [
    "RESULT_SUFFIXES",
    "BatchError",
    "WorkerError",
    "done_jobs",
    "iter_calls",
    "load_build",
    "map_calls",
    "ray_module",
    "result_path",
    "save_result",
]

Build = Callable[[], Any] | str
# Calls in flight per worker: the next job is already there when one finishes (hides the round trip).
_IN_FLIGHT = 2


class WorkerError(GraphError):
    """A job whose worker died on every attempt (`retries` + 1), or workers that cannot build the program."""


class BatchError(GraphError):
    """Some jobs of `map_calls` failed: `.failed` their indices, `.results` every slot (errors included)."""

    def __init__(self, results: list[Any], failed: tuple[int, ...]) -> None:
        self.results = results
        self.failed = failed
        lines = [f"  {_first_line(results[k])}" for k in failed]
        super().__init__(f"{len(failed)} of {len(results)} jobs failed:\n" + "\n".join(lines))


def _first_line(exc: BaseException) -> str:
    return exception_text(exc).splitlines()[0] if exception_text(exc) else type(exc).__name__


# -- building the program ----------------------------------------------------------------------------------


def _is_block(obj: object) -> bool:
    from dfgraph.compose import is_block

    return is_block(obj)


def _as_program(obj: object, origin: str) -> Any:
    """A Program as it is; a block compiled with the default options; anything else a TypeError."""
    from dfgraph.program import Program, compile_block

    if isinstance(obj, Program):
        return obj
    if _is_block(obj):
        return compile_block(obj)
    raise TypeError(f"{origin} returned a {type(obj).__name__}, not a block or program")


def _import_target(target: str) -> Any:
    """The object `MODULE:ATTR` names (ATTR may be dotted); a factory is called with no arguments."""
    from dfgraph.program import Program

    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise ValueError(f"{target!r}: expected MODULE:ATTR, e.g. dfgraph_blocks.examples:counter_two")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Program) and not _is_block(obj) and callable(obj):
        obj = obj()
    return obj


def load_build(build: Build) -> Any:
    """The Program `build` gives: `build()` (or `MODULE:ATTR` imported), compiled when it is a block."""
    if isinstance(build, str):
        return _as_program(_import_target(build), repr(build))
    if _is_block(build) or not callable(build):
        raise TypeError(
            "map_calls: build must be a zero-argument function that returns a block or program, or a "
            f"'MODULE:ATTR' string, not a {type(build).__name__}: each worker calls it once and compiles "
            "what it returns (write build=lambda: graph, or a module-level function)"
        )
    return _as_program(build(), f"build {getattr(build, '__qualname__', build)!r}")


def ray_module() -> Any:
    """The `ray` module, or None when it is not installed."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        return None


# -- errors of one job, in this process and across processes -----------------------------------------------


def _job_error(k: int, exc: Exception) -> Exception:
    """The error of job k: the same kind, the job's index first in the message."""
    message = f"job {k}: {exception_text(exc)}"
    if isinstance(exc, BlockError):
        error: Exception = BlockError(message, exc.path, exc.iterations)
        error.__cause__ = exc.__cause__
        return error
    if isinstance(exc, InputError):
        return InputError(message)
    if isinstance(exc, WorkerError):
        return WorkerError(message)
    exc.add_note(f"raised by job {k}")
    return exc


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it pickles, else a RuntimeError that keeps its type name and text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exception_text(exc)}")


def _failure(exc: Exception) -> tuple[Any, ...]:
    """An error as plain data (BlockError's constructor takes more than its message, so it does not
    unpickle on its own): kind, message, path, iterations, the original exception."""
    cause = exc.__cause__
    if isinstance(exc, BlockError):
        return (
            "block",
            exception_text(exc),
            exc.path,
            exc.iterations,
            None if cause is None else _portable(cause),
        )
    kind = "input" if isinstance(exc, InputError) else "other"
    return (kind, exception_text(exc), "", (), _portable(exc))


def _rebuild(k: int, failure: tuple[Any, ...]) -> Exception:
    """The error of job k from `_failure`'s data."""
    kind, message, path, iterations, cause = failure
    if kind == "block":
        error: Exception = BlockError(f"job {k}: {message}", path, tuple(iterations))
        error.__cause__ = cause
        return error
    if kind == "input":
        return InputError(f"job {k}: {message}")
    assert isinstance(cause, Exception)
    return _job_error(k, cause)


class _Worker:
    """A Ray actor: builds and compiles the program once, then serves calls (errors returned as data)."""

    def __init__(self, build: Build, output: Any) -> None:
        self.program = load_build(build)
        self.output = output

    def ready(self) -> int:
        """The worker's process id, once the program is built."""
        return os.getpid()

    def call(self, job: Mapping[str, Any]) -> tuple[Any, ...]:
        """("ok", result) or ("error", failure data)."""
        try:
            return ("ok", self.program(output=self.output, **job))
        except Exception as exc:
            return ("error", _failure(exc))


# -- the batch -----------------------------------------------------------------------------------------------


def _checked_jobs(
    program: Any, jobs: Iterable[tuple[int, Any]], output: Any
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, Exception]]]:
    """Every job checked against the program's input ports on the driver: (index, inputs) of the good
    ones, (index, InputError) of the others."""
    from dfgraph.interpret import Interpreter

    binder = Interpreter(program)  # the program's own boundary rules and messages, without running it
    good: list[tuple[int, dict[str, Any]]] = []
    bad: list[tuple[int, Exception]] = []
    for k, job in jobs:
        if not isinstance(job, Mapping) or not all(isinstance(name, str) for name in job):
            bad.append(
                (k, InputError(f"job {k}: a job is a mapping of input names to values, got {job!r:.80}"))
            )
            continue
        try:
            binder.bind((), dict(job), output)
        except InputError as exc:
            bad.append((k, _job_error(k, exc)))
            continue
        good.append((k, dict(job)))
    return good, bad


def iter_calls(
    build: Build,
    jobs: Iterable[Mapping[str, Any]],
    *,
    workers: int,
    gpus_per_worker: float = 0,
    output: str | Iterable[str] | None = None,
    progress: bool = True,
    retries: int = 1,
    numbers: Iterable[int] | None = None,
) -> Iterator[tuple[int, Any]]:
    """`map_calls` as the results arrive: (job index, result or its error) pairs in completion order.

    `numbers` gives the jobs other indices (`dfgraph run` resuming: their lines in the jobs file)."""
    if workers < 0 or retries < 0 or gpus_per_worker < 0:
        raise ValueError("map_calls: workers, gpus_per_worker and retries must be >= 0")
    if output is not None and not isinstance(output, str):
        output = tuple(output)  # read once, shipped as a tuple
    jobs = list(jobs)
    indices = list(range(len(jobs)) if numbers is None else numbers)
    if len(indices) != len(jobs):
        raise ValueError(f"map_calls: {len(jobs)} jobs but {len(indices)} numbers")
    program = load_build(build)
    good, bad = _checked_jobs(program, zip(indices, jobs, strict=True), output)
    from tqdm import tqdm

    with tqdm(total=len(jobs), disable=not progress, desc=program.name, unit="job") as bar:
        for k, error in bad:  # rejected on the driver: never shipped
            bar.update(1)
            yield k, error
        ray = ray_module() if workers > 0 and good else None
        if workers > 0 and good and ray is None:
            warnings.warn(
                f"map_calls: Ray is not installed, so the {len(good)} jobs run in this process "
                "(pip install 'dfgraph-engine[ray]')",
                RuntimeWarning,
                stacklevel=3,
            )
        if ray is None:
            for k, job in good:
                try:
                    result: Any = program(output=output, **job)
                except Exception as exc:
                    result = _job_error(k, exc)
                bar.update(1)
                yield k, result
            return
        for k, result in _ray_calls(ray, build, good, workers, gpus_per_worker, output, retries):
            bar.update(1)
            yield k, result


def _ray_calls(
    ray: Any,
    build: Build,
    jobs: list[tuple[int, dict[str, Any]]],
    workers: int,
    gpus_per_worker: float,
    output: Any,
    retries: int,
) -> Iterator[tuple[int, Any]]:
    """The jobs on `workers` actors, `_IN_FLIGHT` calls each; a dead actor is replaced, its jobs retried."""
    if not ray.is_initialized():
        ray.init()  # an existing cluster's address (RAY_ADDRESS) is respected, as Ray does
    actor_class = (
        ray.remote(_Worker).options(num_gpus=gpus_per_worker) if gpus_per_worker else ray.remote(_Worker)
    )
    died = ray.exceptions.RayActorError

    def start(count: int) -> list[Any]:
        actors = [actor_class.remote(build, output) for _ in range(count)]
        try:
            ray.get([actor.ready.remote() for actor in actors])
        except died as exc:
            for actor in actors:
                ray.kill(actor)
            raise WorkerError(f"a worker could not build the program: {exception_text(exc)}") from exc
        return actors

    actors = start(min(workers, len(jobs)))
    queue = collections.deque(jobs)
    attempts: collections.Counter[int] = collections.Counter()
    # ref -> (submission number, slot, actor, index, job); an actor runs its calls in submission order
    in_flight: dict[Any, tuple[int, int, Any, int, dict[str, Any]]] = {}
    submitted = 0
    try:
        while queue or in_flight:
            for slot, actor in enumerate(actors):
                load = sum(1 for _, s, a, _, _ in in_flight.values() if s == slot and a is actor)
                for _ in range(_IN_FLIGHT - load):
                    if not queue:
                        break
                    k, job = queue.popleft()
                    in_flight[actor.call.remote(job)] = (submitted, slot, actor, k, job)
                    submitted += 1
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            _, slot, actor, k, job = in_flight[ref]
            try:
                status, payload = ray.get(ref)
            except died as exc:
                # The worker died: replace it. Its first call in flight was running and is charged an
                # attempt; the calls queued behind it go back to the queue uncharged.
                lost = sorted((v for v in in_flight.values() if v[2] is actor), key=lambda v: v[0])
                for r in [r for r, v in in_flight.items() if v[2] is actor]:
                    del in_flight[r]
                ray.kill(actor)
                actors[slot] = start(1)[0]
                _, _, _, running, running_job = lost[0]
                attempts[running] += 1
                queue.extendleft((k, job) for _, _, _, k, job in reversed(lost[1:]))
                if attempts[running] <= retries:
                    queue.appendleft((running, running_job))
                    continue
                message = f"its worker died on each of {attempts[running]} attempts: {_first_line(exc)}"
                yield running, WorkerError(f"job {running}: {message}")
                continue
            except ray.exceptions.RayError as exc:  # e.g. a job or result that cannot be serialized
                del in_flight[ref]
                yield k, WorkerError(f"job {k}: {_first_line(exc)}")
                continue
            del in_flight[ref]
            yield k, payload if status == "ok" else _rebuild(k, payload)
    finally:
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)


def map_calls(
    build: Build,
    jobs: Iterable[Mapping[str, Any]],
    *,
    workers: int,
    gpus_per_worker: float = 0,
    output: str | Iterable[str] | None = None,
    progress: bool = True,
    retries: int = 1,
    errors: Literal["raise", "return"] = "raise",
) -> list[Any]:
    """Call the program `build()` gives once per job, on `workers` Ray actors; results in job order.

    A failed job's slot holds its `df.InputError` / `df.BlockError` / `WorkerError` (job index in the
    message); at the end one `BatchError` lists them, unless `errors="return"`."""
    if errors not in ("raise", "return"):
        raise ValueError(f"map_calls: errors= takes 'raise' or 'return', got {errors!r}")
    jobs = list(jobs)
    results: list[Any] = [None] * len(jobs)
    failed = []
    for k, result in iter_calls(
        build,
        jobs,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        output=output,
        progress=progress,
        retries=retries,
    ):
        results[k] = result
        if isinstance(result, Exception):
            failed.append(k)
    if failed and errors == "raise":
        raise BatchError(results, tuple(sorted(failed)))
    return results


# -- result files (`dfgraph run`) ----------------------------------------------------------------------------

RESULT_SUFFIXES = (".json", ".png", ".safetensors", ".pt")


def result_path(out: Path, k: int, suffix: str) -> Path:
    """The file of job k's result: DIR/000007.json."""
    return out / f"{k:06d}{suffix}"


def done_jobs(out: Path) -> set[int]:
    """The jobs whose result file exists in `out` (a file still being written has another name)."""
    done = set()
    if out.is_dir():
        for path in out.iterdir():
            if path.suffix in RESULT_SUFFIXES and path.stem.isdigit():
                done.add(int(path.stem))
    return done


def _tensor_class() -> Any:
    torch = sys.modules.get("torch")  # a result holds a tensor only when torch was imported
    return None if torch is None else torch.Tensor


def _image_class() -> Any:
    image = sys.modules.get("PIL.Image")
    return None if image is None else image.Image


def save_result(out: Path, k: int, value: Any, name: str = "output") -> Path:
    """Write job k's result to one file: a PIL image as PNG; tensors (alone or in a mapping of outputs,
    beside JSON values) as safetensors, or torch.save without safetensors; other values as JSON."""
    tensor, image = _tensor_class(), _image_class()
    values = dict(value) if isinstance(value, Mapping) else {name: value}
    if image is not None and isinstance(value, image):
        return _write(result_path(out, k, ".png"), lambda path: value.save(path, format="PNG"))
    tensors = {n: v for n, v in values.items() if tensor is not None and isinstance(v, tensor)}
    plain = {n: v for n, v in values.items() if n not in tensors}
    try:
        text = json.dumps(plain if tensors or isinstance(value, Mapping) else value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        kinds = ", ".join(f"{n!r} ({type(v).__name__})" for n, v in plain.items())
        raise TypeError(
            f"job {k}: cannot write {kinds}: dfgraph run writes tensors, PIL images and JSON values "
            "(choose outputs with --output)"
        ) from exc
    if not tensors:
        return _write(
            result_path(out, k, ".json"), lambda path: path.write_text(text + "\n", encoding="utf-8")
        )
    # copies: safetensors refuses tensors that share memory or are not contiguous
    arrays = {n: v.detach().cpu().contiguous().clone() for n, v in tensors.items()}
    try:
        from safetensors.torch import save_file
    except ImportError:
        import torch

        both = {**arrays, **plain}
        return _write(result_path(out, k, ".pt"), lambda path: torch.save(both, path))
    metadata = {n: json.dumps(v) for n, v in plain.items()}  # plain values beside the tensors, as JSON
    return _write(result_path(out, k, ".safetensors"), lambda path: save_file(arrays, path, metadata))


def _write(path: Path, write: Callable[[Path], object]) -> Path:
    """Write under a temporary name, then rename: an interrupted write never looks like a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)
    return path
