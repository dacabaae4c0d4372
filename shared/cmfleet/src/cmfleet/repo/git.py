"""A thin, typed wrapper around the ``git`` command line (no GitPython: git itself is the reference).

Every failure becomes a :class:`GitError` whose message says what was asked, what git answered and how to fix it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cmfleet.once import Once

T = TypeVar("T")

# Answers of read-only git queries while a `reading()` block runs, by (working tree, arguments).
_memo: Once | None = None
_memo_lock = threading.Lock()


@contextmanager
def reading() -> Iterator[None]:
    """Within the block, each distinct git query of a working tree runs once, whatever asks it (and from any
    thread): for commands that only read the repository, such as ``cmfleet status``, whose rooms ask the same
    questions for each of a thousand units. Nothing may change the repository inside the block."""
    global _memo
    with _memo_lock:
        outer = _memo
        if outer is None:
            _memo = Once()
    try:
        yield
    finally:
        if outer is None:
            with _memo_lock:
                _memo = None


def remembered(root: Path, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or inside :func:`reading` its answer kept for ``(root, key)`` (an exception is kept too)."""
    memo = _memo
    return compute() if memo is None else memo.get((str(root), key), compute)


def reading_now() -> bool:
    """Whether a :func:`reading` block is running (queries are remembered)."""
    return _memo is not None


class GitError(Exception):
    """A git command failed or the repository is not in a usable state; the message says how to fix it."""


@dataclass(frozen=True)
class Change:
    """One changed path between two trees; a rename or copy carries both paths."""

    status: str  # A, M, D, R, C, T, U or ? (untracked)
    path: str
    old_path: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path this change touches: both sides of a rename, only the new file of a copy."""
        return (self.old_path, self.path) if self.status == "R" and self.old_path else (self.path,)


@dataclass(frozen=True)
class LogEntry:
    """One commit as ``git log`` reports it."""

    sha: str
    subject: str
    body: str

    @property
    def short(self) -> str:
        return self.sha[:7]


_RANGE_END = re.compile(r"\^(?:!|@|-\d*)$")  # A^! (A alone), A^@ (its parents), A^-N (A^N..A)


def refuse_range(ref: str, option: str = "--since") -> None:
    """Raise GitError when ``ref`` is a revision range (``A..B``, ``A...B``, ``^A``, ``A^!``, ``A^@``, ``A^-``)
    where one ref is taken: git would answer with several commits, and the errors that follow name none of them."""
    if ".." in ref:
        base = ref.split("..", 1)[0] or "HEAD"
    elif ref.startswith("^"):
        base = ref[1:]
    elif _RANGE_END.search(ref):
        base = _RANGE_END.sub("", ref)
    else:
        return
    raise GitError(f"{option} takes one ref, not a range ({ref!r}): use {option} {base}")


@dataclass(frozen=True)
class InProgress:
    """A git operation stopped half-way (git's own state files say which), and how to finish or abort it."""

    name: str  # rebase, merge, cherry-pick, revert, bisect, am
    state: str  # the state file or folder, relative to the working tree (.git/rebase-merge)
    unmerged: tuple[str, ...]
    how: str

    def describe(self) -> str:
        """``a rebase is in progress (.git/rebase-merge; unmerged: a.py)``."""
        files = ", ".join(self.unmerged[:3]) + (f" and {len(self.unmerged) - 3} more" if len(self.unmerged) > 3 else "")
        return f"a {self.name} is in progress ({self.state}" + (f"; unmerged: {files}" if files else "") + ")"


_RESOLVE = "resolve the conflicts and `git add` the files, then "
#: git's state file or folder of each operation, in the order they are looked for (a rebase stopped on a conflict
#: may hold other files too), with how to finish or abort it.
_IN_PROGRESS = (
    ("rebase-merge", "rebase", f"finish it ({_RESOLVE}`git rebase --continue`) or abort it (`git rebase --abort`)"),
    ("rebase-apply/applying", "am", f"finish it ({_RESOLVE}`git am --continue`) or abort it (`git am --abort`)"),
    ("rebase-apply", "rebase", f"finish it ({_RESOLVE}`git rebase --continue`) or abort it (`git rebase --abort`)"),
    ("MERGE_HEAD", "merge", f"finish it ({_RESOLVE}`git commit`) or abort it (`git merge --abort`)"),
    (
        "CHERRY_PICK_HEAD",
        "cherry-pick",
        f"finish it ({_RESOLVE}`git cherry-pick --continue`) or abort it (`git cherry-pick --abort`)",
    ),
    ("REVERT_HEAD", "revert", f"finish it ({_RESOLVE}`git revert --continue`) or abort it (`git revert --abort`)"),
    ("BISECT_LOG", "bisect", "end it (`git bisect reset` goes back to the branch it started from)"),
)


def _stop_gently(proc: subprocess.Popen[str]) -> None:
    """End ``proc`` as Ctrl-C would (its own signal handlers run: git removes its lock files), SIGKILL only if it
    does not stop; signals to this process are ignored meanwhile, so a second Ctrl-C cannot cut this short."""
    from cmfleet.repo.interrupt import signals_held

    with signals_held():
        for step in (None, signal.SIGINT, signal.SIGKILL):
            if step is not None and proc.poll() is None:
                proc.send_signal(step)
            try:
                proc.communicate(timeout=0.5 if step is None else 10)
                return
            except subprocess.TimeoutExpired:
                continue


def _log_entry(record: str) -> LogEntry:
    """One commit of ``git log --format=%H%x1f%s%x1f%b``."""
    sha, subject, body = (record.strip("\n").split("\x1f") + ["", ""])[:3]
    return LogEntry(sha.strip(), subject.strip(), body.strip())


_NO_GIT = "git is not installed or not on PATH; install git"


def _git_env() -> dict[str, str]:
    """Git's environment (read at each call: callers change os.environ): plain-C messages, as they are parsed,
    and never a credential prompt."""
    return {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}


class Git:
    """Runs git in one working tree."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def run(self, *args: str, check: bool = True, input: str | None = None) -> str:
        """``git args...`` in the working tree; stdout as text. A non-zero exit raises GitError."""
        if input is None and _memo is not None:
            return remembered(self.root, ("run", check, *args), lambda: self._run(args, check, None))
        return self._run(args, check, input)

    def _run(self, args: tuple[str, ...], check: bool, input: str | None) -> str:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=self.root,
                capture_output=True,
                text=True,
                input=input,
                env=_git_env(),
            )
        except FileNotFoundError:
            raise GitError(_NO_GIT) from None
        if check and proc.returncode != 0:
            raise self._failed(args, proc.stdout, proc.stderr)
        return proc.stdout

    def _failed(self, args: tuple[str, ...], out: str, err: str) -> GitError:
        return GitError(f"`git {' '.join(args)}` failed in {self.root}: {(err or out).strip()}")

    def run_to_end(self, *args: str) -> str:
        """``git args...`` for a step that changes the repository, as :meth:`run` but never memoised: when the
        caller is interrupted while git runs (``KeyboardInterrupt``, :class:`~cmfleet.repo.interrupt.Interrupted`),
        git gets SIGINT, unless the same signal reached it already, and is waited for before the exception goes on,
        so it removes its lock files and the caller finds the repository as git left it (git killed outright would
        leave ``.git/index.lock`` behind)."""
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=self.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_git_env(),
            )
        except FileNotFoundError:
            raise GitError(_NO_GIT) from None
        with proc:
            try:
                out, err = proc.communicate()
            except BaseException:
                _stop_gently(proc)
                raise
        if proc.returncode != 0:
            raise self._failed(args, out, err)
        return out

    def ok(self, *args: str) -> bool:
        """Whether ``git args...`` exits 0."""
        if _memo is not None:
            return remembered(self.root, ("ok", *args), lambda: self._ok(args))
        return self._ok(args)

    def _ok(self, args: tuple[str, ...]) -> bool:
        return (
            subprocess.run(
                ["git", *args], cwd=self.root, capture_output=True, env={**os.environ, "LC_ALL": "C"}
            ).returncode
            == 0
        )

    # -- repository state -------------------------------------------------------------------------------------------

    def ensure_repo(self) -> None:
        """Raise unless the working tree is inside a git repository with at least one commit."""
        if not self.ok("rev-parse", "--git-dir"):
            raise GitError(f"{self.root} is not a git repository; run `git init` and commit first")
        if not self.ok("rev-parse", "--verify", "-q", "HEAD^{commit}"):
            raise GitError(f"{self.root}: the repository has no commits yet; commit first")

    def resolve(self, ref: str) -> str:
        """The commit sha ``ref`` names; an unknown ref raises GitError with a hint."""
        if ref.startswith("-"):
            raise GitError(f"unknown git ref {ref!r}: a ref cannot start with '-'")
        out = self.run("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False).strip()
        if not out:
            hint = "check the spelling (git branch -a, git tag -l)"
            if self.is_shallow():
                hint = "this is a shallow clone: run `git fetch --tags --unshallow` (or checkout with fetch-depth: 0)"
            raise GitError(f"unknown git ref {ref!r}: {hint}")
        return out

    def resolve_with_head(self, ref: str) -> tuple[str, str]:
        """``(ref's commit, HEAD's commit)`` in one git call; errors explain as :meth:`resolve` does."""
        if not ref.startswith("-"):
            try:
                lines = self.run("rev-parse", f"{ref}^{{commit}}", "HEAD^{commit}", "--").split()
                if len(lines) == 2:
                    return lines[0], lines[1]
            except GitError:
                pass
        self.ensure_repo()
        return self.resolve(ref), self.head()

    def head(self) -> str:
        return self.resolve("HEAD")

    def branch(self) -> str | None:
        """The checked-out branch, or ``None`` on a detached HEAD."""
        out = self.run("symbolic-ref", "-q", "--short", "HEAD", check=False).strip()
        return out or None

    def is_shallow(self) -> bool:
        return self.run("rev-parse", "--is-shallow-repository", check=False).strip() == "true"

    def merge_base(self, a: str, b: str) -> str:
        """The best common ancestor of two commits."""
        out = self.run("merge-base", a, b, check=False).strip()
        if not out:
            raise GitError(
                f"{a} and {b} have no common ancestor"
                + ("; this is a shallow clone: run `git fetch --tags --unshallow`" if self.is_shallow() else "")
            )
        return out

    def in_progress(self) -> InProgress | None:
        """The rebase, merge, cherry-pick, revert, bisect or ``git am`` stopped half-way in this working tree (its
        state files, found with ``git rev-parse --git-path``: worktrees included), or None."""
        names = [entry[0] for entry in _IN_PROGRESS]
        args = [arg for name in names for arg in ("--git-path", name)]
        paths = self.run("rev-parse", *args, check=False).splitlines()
        if len(paths) != len(names):
            return None
        for (_, name, how), path in zip(_IN_PROGRESS, paths, strict=True):
            found = self.root / path
            if found.exists():
                unmerged = self.run("diff", "--name-only", "-z", "--diff-filter=U", check=False).split("\0")
                state = os.path.relpath(found, self.root)
                return InProgress(name, state, tuple(p for p in unmerged if p), how)
        return None

    def dirty_paths(self) -> list[str]:
        """Tracked files with staged or unstaged changes (untracked files are not counted)."""
        out = self.run("status", "--porcelain=v1", "-z", "--untracked-files=no")
        entries = [e for e in out.split("\0") if e]
        paths: list[str] = []
        skip_next = False
        for entry in entries:
            if skip_next:  # the original path of a staged rename
                skip_next = False
                continue
            status, path = entry[:2], entry[3:]
            if "R" in status or "C" in status:
                skip_next = True
            paths.append(path)
        return paths

    # -- tags -------------------------------------------------------------------------------------------------------

    def tags(self, pattern: str | None = None, merged: str | None = "HEAD") -> list[str]:
        """Tag names matching the glob ``pattern``, only those reachable from ``merged`` unless it is None."""
        if pattern and _memo is not None:  # one listing per ``merged``, matched here (git's glob: ``*`` spans ``/``)
            return [t for t in self.tags(None, merged) if fnmatch.fnmatchcase(t, pattern)]
        args = ["tag", "--list"]
        if merged:
            args += ["--merged", merged]
        if pattern:
            args.append(pattern)
        return [t for t in self.run(*args).splitlines() if t]

    def tag_exists(self, name: str) -> bool:
        return self.ok("rev-parse", "--verify", "-q", f"refs/tags/{name}")

    def tag_commit(self, name: str) -> str:
        return self.run("rev-parse", f"refs/tags/{name}^{{commit}}").strip()

    # -- history ----------------------------------------------------------------------------------------------------

    def changes(self, base: str, head: str = "HEAD", *, three_dot: bool = True) -> list[Change]:
        """Files changed between ``base`` and ``head`` (``base...head`` by default), renames as both paths."""
        spec = f"{base}...{head}" if three_dot else f"{base}..{head}"
        out = self.run("diff", "--name-status", "-z", "-M", "--no-ext-diff", spec, "--")
        return _parse_name_status(out)

    def uncommitted_changes(self) -> list[Change]:
        """Staged and unstaged changes against HEAD, plus untracked files not ignored."""
        changes = _parse_name_status(self.run("diff", "--name-status", "-z", "-M", "--no-ext-diff", "HEAD", "--"))
        changes += [Change("?", p) for p in self.untracked_paths()]
        return changes

    def untracked_paths(self) -> list[str]:
        """Untracked files that no ignore rule covers (what ``git add -A`` would add)."""
        return [p for p in self.run("ls-files", "-z", "--others", "--exclude-standard").split("\0") if p]

    def hidden_differences(self, paths: list[str]) -> list[tuple[str, str]]:
        """``(path, why)`` for files under ``paths`` that differ from HEAD although ``git status`` shows nothing:
        untracked files only this clone's own ignore rules hide (``.git/info/exclude``, ``core.excludesFile``;
        the repository's committed ``.gitignore`` files still count), and tracked files flagged
        assume-unchanged or skip-worktree whose content is not HEAD's. A build packs the files on disk, so
        these would ship although no commit holds them."""
        others = ("ls-files", "-z", "--others")
        in_tree_rules = self.run(*others, "--exclude-per-directory=.gitignore", "--", *paths)
        # untracked and not ignored at all: the callers' own check names them (only ``paths`` are walked here)
        reported = set(self.run(*others, "--exclude-standard", "--", *paths).split("\0"))
        found = [(p, "untracked, hidden by this clone's ignore rules") for p in in_tree_rules.split("\0") if p]
        found = [(p, why) for p, why in found if p not in reported]
        flagged: dict[str, str] = {}
        for entry in self.run("ls-files", "-z", "-v", "--", *paths).split("\0"):
            tag, _, path = entry.partition(" ")
            if tag.islower():
                flagged[path] = "assume-unchanged"
            elif tag == "S":
                flagged[path] = "skip-worktree"
        if flagged:
            names = list(flagged)
            committed = dict(
                (line.split("\t", 1)[1], line.split()[2])
                for line in self.run("ls-tree", "-z", "HEAD", "--", *names).split("\0")
                if line
            )
            present = [n for n in names if (self.root / n).is_file()]
            hashes: list[str] = []
            if present:  # all flagged files can be missing (skip-worktree in a sparse checkout)
                hashes = self.run("hash-object", "--stdin-paths", input="\n".join(present) + "\n").split()
            on_disk = dict(zip(present, hashes, strict=True))  # one hash per path, in order
            for name in names:
                if on_disk.get(name) != committed.get(name):
                    state = "changed" if name in on_disk else "missing"
                    found.append((name, f"{state}, hidden from git status by its {flagged[name]} flag"))
        return found

    def log(self, rev_range: str, paths: list[str] | None = None) -> list[LogEntry]:
        """Commits of ``rev_range`` (newest first), only those touching ``paths`` when given."""
        if paths and _memo is not None:
            served = self._from_linear_history(rev_range, paths)
            if served is not None:
                return served
        fmt = "%H%x1f%s%x1f%b%x1e"
        args = ["log", f"--format={fmt}", rev_range]
        if paths is not None:
            args += ["--", *paths]
        out = self.run(*args)
        return [_log_entry(record) for record in out.split("\x1e") if record.strip("\n")]

    def _linear_history(self) -> tuple[list[tuple[LogEntry, tuple[str, ...]]], dict[str, int]] | None:
        """Every commit reachable from HEAD, newest first, with the paths it changes, and each commit's place in
        that list; None when the history has a merge (there ``git log -- paths`` simplifies history in ways only
        git should compute). Read once per :func:`reading` block."""

        def read() -> tuple[list[tuple[LogEntry, tuple[str, ...]]], dict[str, int]] | None:
            if int(self._run(("rev-list", "--min-parents=2", "--count", "HEAD"), True, None).strip() or 0):
                return None
            fmt = "%x1e%H%x1f%s%x1f%b%x1d"
            args = ("-c", "core.quotepath=off", "log", "--no-renames", "--name-only", f"--format={fmt}", "HEAD")
            history = []
            for record in self._run(args, True, None).split("\x1e")[1:]:
                head, _, files = record.partition("\x1d")
                history.append((_log_entry(head), tuple(f for f in files.split("\n") if f)))
            return history, {entry.sha: i for i, (entry, _) in enumerate(history)}

        return remembered(self.root, ("linear-history",), read)

    def _from_linear_history(self, rev_range: str, paths: list[str]) -> list[LogEntry] | None:
        """``git log RANGE -- PATHS`` answered from the history read once, for ``HEAD`` and ``REF..HEAD`` in a
        history without merges (where it is exactly the commits after REF that change a path under PATHS);
        None when it cannot be answered so (then git is asked)."""
        if rev_range == "HEAD":
            since = None
        elif rev_range.endswith("..HEAD") and "..." not in rev_range:
            since = rev_range[: -len("..HEAD")]
        else:
            return None
        if any(not p or p.startswith(":") or any(c in p for c in "*?[") for p in paths):
            return None  # pathspec magic or globs: git's own matching
        linear = self._linear_history()
        if linear is None:
            return None
        history, places = linear
        stop: int | None = len(history)
        if since is not None:
            try:
                commit = self.run("rev-parse", "--verify", "-q", f"{since}^{{commit}}").strip()
            except GitError:
                return None
            stop = places.get(commit)
            if stop is None:
                return None  # not reachable from HEAD: git knows what REF..HEAD is then
        prefixes = tuple(p.rstrip("/") + "/" for p in paths)
        exact = {p.rstrip("/") for p in paths}
        return [
            entry for entry, changed in history[:stop] if any(f in exact or f.startswith(prefixes) for f in changed)
        ]

    def count(self, rev_range: str, paths: list[str] | None = None) -> int:
        """How many commits ``rev_range`` holds (touching ``paths`` when given)."""
        args = ["rev-list", "--count", rev_range]
        if paths is not None:
            args += ["--", *paths]
        return int(self.run(*args).strip() or 0)

    def show_file(self, commit: str, path: str) -> str | None:
        """The text of ``path`` at ``commit``, or ``None`` when it does not exist there."""
        proc = subprocess.run(
            ["git", "show", f"{commit}:{path}"],
            cwd=self.root,
            capture_output=True,
            env={**os.environ, "LC_ALL": "C"},
        )
        if proc.returncode != 0:
            return None
        return proc.stdout.decode("utf-8", errors="replace")


def _parse_name_status(out: str) -> list[Change]:
    """Parse ``git diff --name-status -z`` output: ``STATUS\\0path\\0`` or ``R100\\0old\\0new\\0``."""
    fields = out.split("\0")
    changes: list[Change] = []
    i = 0
    while i < len(fields):
        status = fields[i]
        if not status:
            i += 1
            continue
        kind = status[0]
        if kind in ("R", "C"):
            changes.append(Change(kind, fields[i + 2], fields[i + 1]))
            i += 3
        else:
            changes.append(Change(kind, fields[i + 1]))
            i += 2
    return changes
