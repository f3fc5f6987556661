"""Archive analysis: every DICOM and video file of a folder, analysed on Dask (or in this process).

Each file is one task: open it, run a fresh guidance engine over all its frames (:mod:`.analysis`) and
return its ``echosclero.analysis/1`` document with the time it took. A file that cannot be used (not
DICOM or video, corrupt, truncated, uncalibrated without ``--mm-per-px``) fails alone: the others are
analysed and the bad one is listed with its one-line reason. A file whose frames stop half-way is kept as
``partial`` with the frames before the failure.

Where the tasks run
-------------------
* ``scheduler="tcp://HOST:PORT"``: any running Dask scheduler. Its workers need EchoSclero installed and
  must see the archive at the same path (the documents come back to this process, which writes them).
* otherwise, with ``workers > 1`` and more than one file: a local Dask cluster started for the run, one
  process per worker, one thread each (the engine is single-threaded per frame, and OpenCV is held to one
  thread per worker so that ``workers`` processes use ``workers`` cores).
* otherwise (``workers == 1``, or a single file): in this process, file after file, without Dask.

Outputs (``out_dir``): ``<name>.json`` per analysed file (``name`` without a ``.dcm``/``.dicom``/video
extension; file names without such an extension, e.g. DICOM UIDs, are kept whole; where two files would
give the same name, the whole file name is used), ``summary.csv`` and ``summary.md``
(:mod:`.summary`). Each JSON is written as soon as its file is done, so an interrupted run keeps them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from echosclero.batch.analysis import SCHEMA, analyse_source
from echosclero.batch.summary import FileStatus, FileSummary, summarise_document, summary_csv, summary_markdown
from echosclero.errors import EchoScleroError, InputError

__all__ = [
    "ArchiveOptions",
    "ArchiveResult",
    "FileOutcome",
    "analyse_archive",
    "analyse_file",
    "output_names",
    "warm_up",
]

#: Extensions dropped from a file's name to name its JSON.
_KNOWN_EXTENSIONS = {".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}

#: Seconds to wait for a Dask scheduler (``--scheduler``) to answer, and for it to have a worker.
DEFAULT_SCHEDULER_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ArchiveOptions:
    """How each file is analysed.

    Parameters
    ----------
    mm_per_px
        Pixel pitch for files without calibration (``--mm-per-px``).
    max_frames
        Analyse at most this many frames per file.
    contours
        Include vessel contours (mm) in the JSON.
    """

    mm_per_px: float | None = None
    max_frames: int | None = None
    contours: bool = False


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one file of the archive.

    Parameters
    ----------
    name
        Name relative to the archive folder.
    status
        ``"ok"``, ``"partial"`` (frames stopped half-way), ``"failed"`` or ``"cancelled"``.
    reason
        One line saying why, when not ``ok``.
    document
        The ``echosclero.analysis/1`` document (``None`` when failed or cancelled).
    elapsed_s
        Wall time of the file on its worker (open, decode, analyse).
    worker
        Where it ran (``host:pid``).
    """

    name: str
    status: FileStatus
    reason: str = ""
    document: dict | None = field(default=None, repr=False)
    elapsed_s: float = 0.0
    worker: str = ""

    @property
    def n_frames(self) -> int:
        return len(self.document["frames"]) if self.document else 0


def _reason(path: Path, exc: BaseException) -> str:
    """One line for a user: the exception's first line, without a repeated file path."""
    from echosclero.sources.dicom import NotDicomError

    if isinstance(exc, NotDicomError) or isinstance(exc.__cause__, NotDicomError):
        return "not a DICOM or video file"
    text = str(exc).splitlines()
    reason = text[0] if text else type(exc).__name__
    for prefix in (f"{path}: ", f"{path.name}: "):
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
    return reason


def analyse_file(
    path: str | os.PathLike,
    name: str,
    options: ArchiveOptions = ArchiveOptions(),  # noqa: B008 - frozen, immutable default
    *,
    opencv_threads: int | None = None,
    video=None,
) -> FileOutcome:
    """Analyse one file of an archive; never raises for a bad file (the outcome says why).

    This is the Dask task of :func:`analyse_archive` (a top-level function, picklable by reference).

    Parameters
    ----------
    path
        The file.
    name
        Its name in the archive (reported back).
    options
        Analysis options.
    opencv_threads
        When given, OpenCV's thread count in this process (1 on Dask workers).
    video
        A :class:`~echosclero.render.VideoWriter` for annotated frames (in-process runs only).

    Returns
    -------
    FileOutcome
        ``ok`` or ``partial`` with the document, or ``failed`` with a one-line reason.
    """
    from echosclero.sources.open import open_file

    if opencv_threads is not None:
        import cv2

        cv2.setNumThreads(int(opencv_threads))
    worker = f"{socket.gethostname()}:{os.getpid()}"
    path = Path(path)
    t0 = time.perf_counter()
    try:
        with open_file(path, mm_per_px=options.mm_per_px) as source:
            run = analyse_source(source, max_frames=options.max_frames, contours=options.contours, video=video,
                                 progress=False, keep_partial=True)
    except EchoScleroError as exc:
        return FileOutcome(name, "failed", _reason(path, exc), elapsed_s=time.perf_counter() - t0, worker=worker)
    except MemoryError:
        return FileOutcome(name, "failed", "out of memory while analysing this file",
                           elapsed_s=time.perf_counter() - t0, worker=worker)
    except Exception as exc:  # noqa: BLE001 - one file's internal error must not stop the archive
        text = str(exc).splitlines()[0] if str(exc) else ""
        return FileOutcome(name, "failed", f"internal error: {type(exc).__name__}: {text}",
                           elapsed_s=time.perf_counter() - t0, worker=worker)
    status: FileStatus = "ok" if run.error is None else "partial"
    return FileOutcome(name, status, run.error or "", document=run.document,
                       elapsed_s=time.perf_counter() - t0, worker=worker)


def warm_up() -> str:
    """Import what a task needs (decoders, OpenCV, the engine), so that no file's time pays for it.

    Run once per Dask worker before the tasks, and once before an in-process run; returns ``host:pid``.
    """
    import pydicom.encaps  # noqa: F401
    import pydicom.pixels  # noqa: F401

    import echosclero.guidance  # noqa: F401
    import echosclero.render  # noqa: F401
    import echosclero.sources.dicom  # noqa: F401
    import echosclero.sources.open  # noqa: F401
    import echosclero.sources.video  # noqa: F401

    return f"{socket.gethostname()}:{os.getpid()}"


def output_names(names: list[str]) -> dict[str, str]:
    """JSON file name for each input name (see the module notes): ``a/b.dcm`` -> ``a__b.json``."""
    def base(name: str, whole: bool) -> str:
        p = Path(name)
        if not whole and p.suffix.lower() in _KNOWN_EXTENSIONS | _video_extensions():
            p = p.with_suffix("")
        return "__".join(p.parts)

    first = {n: base(n, False) for n in names}
    counts: dict[str, int] = {}
    for b in first.values():
        counts[b.lower()] = counts.get(b.lower(), 0) + 1
    out = {}
    for n in names:
        b = first[n] if counts[first[n].lower()] == 1 else base(n, True)
        out[n] = b + ".json"
    return out


def _video_extensions() -> set[str]:
    from echosclero.sources.video import VIDEO_EXTENSIONS

    return {e.lower() for e in VIDEO_EXTENSIONS}


@dataclass
class ArchiveResult:
    """The analysis of a whole archive.

    Attributes
    ----------
    folder
        The archive folder as given.
    outcomes
        One per file, in name order (documents dropped unless ``keep_documents``).
    summary
        One row per file, in name order.
    elapsed_s
        Wall time of the whole run, cluster start included.
    executor
        Where it ran, in words (``"in this process"``, ``"local Dask cluster (2 workers)"``, ...).
    n_workers
        Workers used (1 in process).
    """

    folder: str
    outcomes: list[FileOutcome]
    summary: list[FileSummary]
    elapsed_s: float
    executor: str
    n_workers: int
    interrupted: bool = False

    @property
    def n_analysed(self) -> int:
        """Files with at least one frame analysed (``ok`` or ``partial``)."""
        return sum(o.status in ("ok", "partial") for o in self.outcomes)

    @property
    def n_frames(self) -> int:
        return sum(row.frames for row in self.summary)

    def document(self) -> dict:
        """The folder document: ``files`` (documents, name order), ``errors`` and the ``summary`` rows."""
        return {
            "schema": SCHEMA,
            "source": self.folder,
            "calibration": None,
            "frames": [],
            "files": [o.document for o in self.outcomes if o.document is not None],
            "errors": [{"name": o.name, "reason": o.reason} for o in self.outcomes if o.status != "ok"],
            "summary": [row.to_json() for row in self.summary],
        }


def _check_scheduler_reachable(address: str, timeout_s: float) -> None:
    """Fail fast, with one line, when a ``tcp://`` scheduler address does not answer."""
    text = address if "://" in address else f"tcp://{address}"
    parts = urlsplit(text)
    if parts.scheme != "tcp":
        return  # tls://, ws://, inproc://...: left to distributed
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"--scheduler {address}: the port must be a number (Dask's default is 8786)") from None
    if not parts.hostname or port is None:
        raise InputError(f"--scheduler {address}: write tcp://HOST:PORT (Dask's default port is 8786)")
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise InputError(
            f"cannot reach the Dask scheduler at {address} ({why}); check that it is running and the address, "
            "or leave out --scheduler to use a local cluster"
        ) from None


def _connect(scheduler: str, timeout_s: float):
    from distributed import Client

    _check_scheduler_reachable(scheduler, timeout_s)
    try:
        client = Client(scheduler, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot use the Dask scheduler at {scheduler} ({text}); leave out --scheduler to use a local cluster"
        ) from None
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except (TimeoutError, OSError):
        client.close()
        raise InputError(
            f"the Dask scheduler at {scheduler} has no worker (none joined within {timeout_s:g} s); start "
            "`dask worker` processes, or leave out --scheduler to use a local cluster"
        ) from None
    return client


def _local_cluster(n_workers: int):
    from distributed import Client, LocalCluster

    # The worker processes share the terminal's process group: Ctrl-C would reach each of them and each
    # would print a traceback. Spawned with SIGINT ignored (inherited through exec, and kept by Python
    # and asyncio), they leave Ctrl-C to this process, which cancels the tasks and closes the cluster.
    # (Ctrl-C is ignored here too while the workers start.)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
    except (RuntimeError, OSError, TimeoutError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(
            f"cannot start a local Dask cluster of {n_workers} worker processes ({type(exc).__name__}: {text}); "
            "use --workers 1 to analyse in this process"
        ) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return Client(cluster, set_as_default=False), cluster


def _dask_outcomes(client, jobs: list[tuple[str, str]], options: ArchiveOptions) -> Iterator[FileOutcome]:
    from distributed import as_completed

    try:
        client.run(warm_up)  # on every worker, before the tasks: imports are not charged to the first file
    except Exception as exc:  # noqa: BLE001 - whatever a remote environment raises, one line
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(
            f"the Dask workers cannot run EchoSclero ({type(exc).__name__}: {text}); install the same EchoSclero "
            "version in the workers' environment"
        ) from None
    tag = uuid.uuid4().hex[:8]
    futures = {}
    for i, (path, name) in enumerate(jobs):
        future = client.submit(analyse_file, path, name, options, opencv_threads=1, key=f"echosclero-{tag}-{i}",
                               pure=False)
        futures[future] = name
    pending = set(futures)
    try:
        for future in as_completed(list(futures), loop=client.loop):
            pending.discard(future)
            name = futures[future]
            if future.status == "finished":
                outcome = future.result()
            else:
                exc = future.exception()
                text = str(exc).splitlines()[0] if exc is not None and str(exc) else ""
                reason = f"the Dask task failed: {type(exc).__name__}" + (f": {text}" if text else "")
                outcome = FileOutcome(name, "failed", reason)
            future.release()
            yield outcome
    finally:
        if pending:
            client.cancel(list(pending))


def analyse_archive(
    folder: str | os.PathLike,
    *,
    out_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    options: ArchiveOptions = ArchiveOptions(),  # noqa: B008 - frozen, immutable default
    progress: bool | None = None,
    keep_documents: bool = False,
    scheduler_timeout_s: float = DEFAULT_SCHEDULER_TIMEOUT_S,
    video=None,
) -> ArchiveResult:
    """Analyse every DICOM and video file of ``folder`` (see the module notes for where it runs).

    Parameters
    ----------
    folder
        The archive (its files, not sub-folders; hidden files ignored).
    out_dir
        Where to write ``<name>.json`` per file, ``summary.csv`` and ``summary.md`` (created if needed);
        ``None`` writes nothing.
    workers
        Local Dask workers (processes, one thread each); default: the number of cores. Ignored with
        ``scheduler``.
    scheduler
        Address of a running Dask scheduler (``tcp://HOST:PORT``).
    options
        How each file is analysed.
    progress
        A tqdm bar on stderr (``None``: only when stderr is a terminal).
    keep_documents
        Keep every document in :attr:`ArchiveResult.outcomes` (for one combined JSON); otherwise each
        is dropped once written.
    scheduler_timeout_s
        Longest wait for the scheduler to answer and to have a worker.
    video
        A :class:`~echosclero.render.VideoWriter` for all annotated frames; forces an in-process run
        (refused with ``scheduler`` or an explicit ``workers > 1``).

    Returns
    -------
    ArchiveResult
        Files in name order; an interrupted run (Ctrl-C) returns what finished, the rest ``cancelled``,
        with :attr:`ArchiveResult.interrupted` set.

    Raises
    ------
    InputError
        No such folder, a bad ``workers`` / ``out_dir``, an unreachable scheduler or one without workers.
    """
    from echosclero.sources.folder import FolderSource

    t0 = time.perf_counter()
    listing = FolderSource(folder, mm_per_px=options.mm_per_px)
    if workers is not None and not (isinstance(workers, int) and 1 <= workers <= 1024):
        raise InputError(f"--workers must be a whole number from 1 to 1024, got {workers!r}")
    if not (scheduler_timeout_s > 0):
        raise InputError(f"--scheduler-timeout-s must be a positive number of seconds, got {scheduler_timeout_s!r}")
    if video is not None and (scheduler is not None or (workers or 1) > 1):
        raise InputError("--video writes one annotated video in this process: use it with --workers 1 and "
                         "without --scheduler, or leave it out for a parallel archive run")
    n_workers = workers if workers is not None else (1 if video is not None else (os.cpu_count() or 1))
    names = [str(p.relative_to(listing.path)) for p in listing.files]
    jobs = [(str(p.resolve()), n) for p, n in zip(listing.files, names, strict=True)]
    outputs = output_names(names)
    out_path = None
    if out_dir is not None:
        out_path = Path(out_dir)
        try:
            out_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create output folder {out_path}: {exc.strerror or exc}") from None

    client = cluster = None
    if scheduler is not None:
        client = _connect(scheduler, scheduler_timeout_s)
        n_workers = len(client.scheduler_info().get("workers", {})) or 1
        executor = f"Dask scheduler {scheduler} ({n_workers} worker{'s' * (n_workers != 1)})"
    elif n_workers > 1 and len(jobs) > 1:
        n_workers = min(n_workers, len(jobs))
        client, cluster = _local_cluster(n_workers)
        executor = f"local Dask cluster ({n_workers} worker processes)"
    else:
        n_workers = 1
        executor = "in this process"

    show = sys.stderr.isatty() if progress is None else bool(progress)
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=f"analyse {Path(folder).name or folder}", unit="file", file=sys.stderr,
               disable=not show, dynamic_ncols=True)
    done: dict[str, FileOutcome] = {}
    rows: dict[str, FileSummary] = {}
    interrupted = False
    frames = 0
    try:
        if client is not None:
            stream = _dask_outcomes(client, jobs, options)
        else:
            warm_up()
            stream = (analyse_file(path, name, options, video=video) for path, name in jobs)
        try:
            for outcome in stream:
                output = ""
                if out_path is not None and outcome.document is not None:
                    output = outputs[outcome.name]
                    _write_json(out_path / output, outcome.document)
                rows[outcome.name] = _row(outcome, output)
                frames += outcome.n_frames
                done[outcome.name] = outcome if keep_documents else replace(outcome, document=None)
                bar.update(1)
                bar.set_postfix(frames=frames, failed=sum(r.status == "failed" for r in rows.values()), refresh=False)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    finally:
        bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    outcomes = []
    for name in names:
        if name not in done:
            done[name] = FileOutcome(name, "cancelled", "the run was interrupted before this file was done")
            rows[name] = _row(done[name], "")
        outcomes.append(done[name])
    summary = [rows[n] for n in names]
    if out_path is not None:
        try:
            summary_csv(summary, out_path / "summary.csv")
            (out_path / "summary.md").write_text(
                summary_markdown(summary, title=f"EchoSclero archive analysis: {folder}"), encoding="utf-8"
            )
        except OSError as exc:
            raise InputError(f"cannot write the summary into {out_path}: {exc.strerror or exc}") from None
    return ArchiveResult(folder=str(folder), outcomes=outcomes, summary=summary,
                         elapsed_s=time.perf_counter() - t0, executor=executor, n_workers=n_workers,
                         interrupted=interrupted)


def _row(outcome: FileOutcome, output: str) -> FileSummary:
    if outcome.document is None:
        return FileSummary(name=outcome.name, status=outcome.status, reason=outcome.reason)
    return summarise_document(outcome.document, name=outcome.name, elapsed_s=outcome.elapsed_s,
                              status=outcome.status, reason=outcome.reason, output=output)


def _write_json(path: Path, document: dict) -> None:
    try:
        path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
