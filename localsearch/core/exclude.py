"""Which paths indexing skips: sensible defaults, the user's patterns, `.gitignore` files.

Patterns use `.gitignore` syntax (written here from git's documented rules, no library:
bench/library_compare.py holds this to `git check-ignore` on a table of tricky patterns and
random ones, where pathspec's GitIgnoreSpec disagrees more often and refuses some lines):

- blank lines and lines starting with `#` are ignored; `\\#` and `\\!` escape those signs;
  trailing spaces are dropped unless escaped with a backslash;
- `!pattern` includes again what an earlier pattern excluded (the last match wins), but
  nothing below an excluded folder comes back, since that folder is never entered;
- a pattern ending in `/` matches folders only;
- a pattern with a `/` at its start or in its middle is anchored to the folder it is
  relative to (the indexed root, or the folder holding the `.gitignore`); otherwise it
  matches a name at any depth;
- `*` matches anything but `/`, `?` one character but `/`, `[a-z]` / `[!a-z]` a class
  (with git's named classes such as `[[:digit:]]`); a pattern git gives up on (an
  unclosed `[`, a trailing backslash, an unknown class name) matches nothing;
  `**/` at the start matches in every folder, `/**` at the end everything inside, and
  `/**/` zero or more folders.

Deciding never opens a file: scanning prunes excluded folders before entering them, and
the only files read for exclusion are `.gitignore` files, when the setting asks for it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# Folders that hold tools' state rather than a person's documents, and hidden entries.
# A user pattern such as `!.notes/` brings a hidden folder back; user patterns come later.
DEFAULT_PATTERNS: tuple[str, ...] = (
    ".*",
    "node_modules/",
    "__pycache__/",
    "venv/",
    "site-packages/",
    "bower_components/",
    "*.egg-info/",
    "$RECYCLE.BIN/",
    "System Volume Information/",
    "lost+found/",
    "*~",
    "~$*",
    "*.tmp",
    "*.swp",
    "*.partial",
    "*.crdownload",
    "*.part",
)

GITIGNORE = ".gitignore"


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    base: str  # folder of the rule's file, relative to the root, "" at the root
    # A pattern without a slash can only match the last name of a path, so it is matched
    # against that name alone: no regex has to try every folder boundary of the path.
    name_only: bool = False
    # The exact text matched when the pattern has no wildcard (most lines of a .gitignore).
    literal: str | None = None

    def matches(self, target: str, name: str) -> bool:
        if self.literal is not None:
            return (name if self.name_only else target) == self.literal
        return self.regex.match(name if self.name_only else target) is not None


def _split_pattern(line: str) -> tuple[str, bool] | None:
    """(pattern, negated) for one line of a .gitignore, or None for blanks and comments."""
    line = line.rstrip("\n").rstrip("\r")
    # Trailing spaces go unless escaped ("foo\ " keeps one space).
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    if not line or line.startswith("#"):
        return None
    negate = False
    if line.startswith("!"):
        negate, line = True, line[1:]
    elif line.startswith(("\\!", "\\#")):
        line = line[1:]
    return (line, negate) if line else None


# The named classes git's matcher knows inside brackets ([[:digit:]]), over ASCII as git's are.
_NAMED_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\v\\f\\r",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


class _NeverMatches(Exception):
    """A pattern git's matcher gives up on (an unclosed `[`, a trailing `\\`, an unknown
    `[:name:]`): it matches no path at all."""


def _class_to_regex(pattern: str, i: int) -> tuple[str, int]:
    """The `[...]` class starting at pattern[i] as a regex, and the index after it. As in
    git: `!` or `^` first negates, a `]` first (after the negation) is literal, `\\` escapes,
    `a-z` is a range (a reversed one matches nothing), `[:name:]` a named class."""
    n = len(pattern)
    j = i + 1
    negate = j < n and pattern[j] in "!^"
    if negate:
        j += 1
    pieces: list[str] = []
    previous: str | None = None  # the last single character, which may start a range
    first = True
    while True:
        if j >= n:
            raise _NeverMatches
        ch = pattern[j]
        if ch == "]" and not first:
            break
        first = False
        if ch == "\\":
            j += 1
            if j >= n:
                raise _NeverMatches
            ch = pattern[j]
        elif ch == "-" and previous is not None and j + 1 < n and pattern[j + 1] != "]":
            j += 1
            end = pattern[j]
            if end == "\\":
                j += 1
                if j >= n:
                    raise _NeverMatches
                end = pattern[j]
            pieces.pop()  # the range replaces its start
            if previous <= end:
                pieces.append(f"{re.escape(previous)}-{re.escape(end)}")
            previous = None
            j += 1
            continue
        elif ch == "[" and pattern.startswith(":", j + 1):
            close = pattern.find("]", j + 2)
            if close < 0:
                raise _NeverMatches
            if pattern[close - 1] == ":" and close - 1 >= j + 2:
                named = _NAMED_CLASSES.get(pattern[j + 2 : close - 1])
                if named is None:
                    raise _NeverMatches
                pieces.append(named)
                previous = None
                j = close + 1
                continue
            # No ":]" before the next "]": the "[" is an ordinary member.
        pieces.append(re.escape(ch))
        previous = ch
        j += 1
    inner = "".join(pieces)
    # A class never matches the separator.
    if negate:
        return f"[^/{inner}]", j + 1
    return (f"(?!/)[{inner}]" if inner else "(?!)"), j + 1


def _glob_to_regex(pattern: str) -> str:
    """The regex of a glob; raises _NeverMatches for a pattern that can match nothing."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                at_start = i == 0 or pattern[i - 1] == "/"
                at_end = i + 2 == n or pattern[i + 2] == "/"
                if at_start and at_end:
                    if i + 2 == n:
                        # A trailing /**: everything inside ("dir/**" does not match dir
                        # itself, since no path ends in a slash).
                        out.append(".*")
                        i += 2
                    else:
                        out.append("(?:.*/)?")  # **/ : zero or more folders
                        i += 3
                    continue
                while i < n and pattern[i] == "*":
                    i += 1
                out.append("[^/]*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            regex, i = _class_to_regex(pattern, i)
            out.append(regex)
            continue
        elif ch == "\\":
            i += 1
            if i >= n:
                raise _NeverMatches  # a trailing backslash escapes nothing
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


_WILDCARDS = re.compile(r"[*?\[\\]")


def compile_rule(line: str, base: str = "") -> _Rule | None:
    parsed = _split_pattern(line)
    if parsed is None:
        return None
    pattern, negate = parsed
    # One slash at each end has a meaning; a second one is part of the pattern (as in git,
    # where "//x" or "x//" then matches nothing).
    dir_only = pattern.endswith("/")
    pattern = pattern.removesuffix("/")
    if not pattern:
        return None
    anchored = "/" in pattern
    pattern = pattern.removeprefix("/")
    try:
        body = _glob_to_regex(pattern)
    except _NeverMatches:
        return None  # as git does, such a line is kept but matches nothing
    if anchored:
        regex = re.compile(f"^{body}$", re.DOTALL)  # a leading **/ made its own (?:.*/)?
        literal = pattern if not _WILDCARDS.search(pattern) else None
        return _Rule(regex, negate, dir_only, base, literal=literal)
    literal = pattern if not _WILDCARDS.search(pattern) else None
    return _Rule(re.compile(f"^{body}$", re.DOTALL), negate, dir_only, base, name_only=True, literal=literal)


class Rules:
    """An ordered list of patterns; the last one that matches a path decides."""

    def __init__(self, rules: Iterable[_Rule] = ()) -> None:
        self.rules: list[_Rule] = list(rules)

    @classmethod
    def parse(cls, lines: Iterable[str], base: str = "") -> Rules:
        return cls(r for r in (compile_rule(line, base) for line in lines) if r is not None)

    def __add__(self, other: Rules) -> Rules:
        return Rules(self.rules + other.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match(self, relative: str, is_dir: bool) -> bool | None:
        """True: excluded; False: included again by a `!` pattern; None: no pattern matches.
        `relative` is the path below the root with `/` separators."""
        name = relative.rpartition("/")[2]
        for rule in reversed(self.rules):
            if rule.dir_only and not is_dir:
                continue
            target = relative
            if rule.base:
                if not relative.startswith(rule.base + "/"):
                    continue
                target = relative[len(rule.base) + 1 :]
            if rule.matches(target, name):
                return not rule.negate
        return None


def _is_virtualenv(path: str) -> bool:
    """A Python virtual environment, whatever its name (`pyvenv.cfg` marks it)."""
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


class Exclusions:
    """Exclusion rules for indexing: defaults, then the user's patterns, then (optionally)
    the `.gitignore` files found in the indexed trees."""

    def __init__(self, patterns: Sequence[str] = (), *, use_gitignore: bool = False) -> None:
        self.base = Rules.parse(DEFAULT_PATTERNS) + Rules.parse(patterns)
        self.use_gitignore = use_gitignore
        self._gitignores: dict[str, tuple[tuple[int, float], Rules]] = {}
        self.unreadable: list[tuple[str, str]] = []  # (folder, reason) met while walking

    def gitignore_rules(self, folder: str, relative: str) -> Rules:
        """The rules of `folder`/.gitignore (cached until the file changes), or no rules."""
        if not self.use_gitignore:
            return Rules()
        path = os.path.join(folder, GITIGNORE)
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            self._gitignores.pop(path, None)
            return Rules()
        if not stat.S_ISREG(info.st_mode) or info.st_size > 1024 * 1024:
            return Rules()
        key = (info.st_size, info.st_mtime)
        cached = self._gitignores.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                rules = Rules.parse(handle, relative)
        except OSError:
            rules = Rules()
        self._gitignores[path] = (key, rules)
        return rules

    def _excluded(self, rules: Rules, relative: str, full: str, is_dir: bool) -> bool:
        if is_dir and _is_virtualenv(full):
            return rules.match(relative, True) is not False  # unless a pattern brings it back
        return rules.match(relative, is_dir) is True

    def walk(self, root: Path, start: Path | None = None) -> Iterator[Path]:
        """Every file (regular or special) under `start` (default: root) that no rule
        excludes, sorted, never following a symbolic link, never entering an excluded
        folder. Rules are those of `root`: a subfolder sees its parents' `.gitignore`s."""
        rules = self.base + self.gitignore_rules(str(root), "")
        if start is None or start == root:
            yield from self._walk(str(root), "", rules)
            return
        rules_at = self._rules_at(root, start)
        if rules_at is not None:
            relative = start.relative_to(root).as_posix()
            yield from self._walk(str(start), relative, rules_at + self.gitignore_rules(str(start), relative))

    def _rules_at(self, root: Path, folder: Path) -> Rules | None:
        """The rules in force inside `folder` (its own .gitignore aside), or None when the
        folder itself is excluded or reached through a symbolic link."""
        if not self.allows(root, folder):
            return None
        rules = self.base + self.gitignore_rules(str(root), "")
        current, relative = str(root), ""
        for part in folder.relative_to(root).parts[:-1]:
            current = os.path.join(current, part)
            relative = f"{relative}/{part}" if relative else part
            rules = rules + self.gitignore_rules(current, relative)
        return rules

    def _walk(self, folder: str, relative: str, rules: Rules) -> Iterator[Path]:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            return  # vanished meanwhile
        except OSError as exc:
            # Unreadable: nothing below it can be indexed; say so once per walk.
            self.unreadable.append((folder, exc.strerror or str(exc)))
            return
        subfolders = []
        for entry in entries:
            rel = f"{relative}/{entry.name}" if relative else entry.name
            try:
                if entry.is_symlink():
                    continue  # never followed: no loops, nothing outside the roots
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if self._excluded(rules, rel, entry.path, is_dir):
                continue
            if is_dir:
                subfolders.append((entry.path, rel))
            else:
                yield Path(entry.path)
        for path, rel in subfolders:
            yield from self._walk(path, rel, rules + self.gitignore_rules(path, rel))

    def allows(self, root: Path, path: Path) -> bool:
        """Whether walking `root` would reach `path` (no folder on the way and not the
        path itself excluded, no symbolic link on the way)."""
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            return False
        rules = self.base + self.gitignore_rules(str(root), "")
        current = str(root)
        relative = ""
        for position, part in enumerate(parts):
            current = os.path.join(current, part)
            relative = f"{relative}/{part}" if relative else part
            last = position == len(parts) - 1
            try:
                info = os.lstat(current)
            except OSError:
                info = None
            if info is not None and stat.S_ISLNK(info.st_mode):
                return False
            is_dir = info is not None and stat.S_ISDIR(info.st_mode)
            if self._excluded(rules, relative, current, is_dir or not last):
                return False
            if not last:
                rules = rules + self.gitignore_rules(current, relative)
        return True
