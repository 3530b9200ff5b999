"""Our hand-written parts against the libraries that do the same job (issue 10, section 5).

1. `.gitignore` matching: localsearch.core.exclude against pathspec's GitIgnoreSpec.
   Correctness: a table of tricky patterns, each case a small git repository whose paths
   (folders and files) are put to `git check-ignore --no-index -v -n`; a path counts as
   ignored when git names a pattern without `!`, which covers paths inside an ignored
   folder too. Both matchers are asked the way a walk asks: an ignored folder hides all
   below it, and a nested `.gitignore` applies below its own folder, the deeper file first.
   pathspec is also asked the way most of its users ask (one spec, `match_file` on the
   bare path). Speed: microseconds per path over every path under the given trees, the two
   matchers interleaved in the same run, with the spread of the repeats.
2. DOCX, ODT, EPUB and HTML text: our extractors against python-docx, odfpy, ebooklib
   (+ our HTML reader, as ebooklib gives markup), lxml, selectolax and trafilatura, on
   documents whose text is known (see `_corpus`), and on hostile files.

    python bench/library_compare.py                      # both parts, the default trees
    python bench/library_compare.py --only gitignore --tree .

Writes bench/results/library_compare.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

RESULTS_PATH = ROOT / "bench" / "results" / "library_compare.json"

# --- 1. .gitignore ------------------------------------------------------------------------

# (name, {folder: .gitignore lines}, paths). A path ending in "/" is a folder; the folders
# above every path are created and asked about too.
Case = tuple[str, dict[str, list[str]], list[str]]

GITIGNORE_CASES: list[Case] = [
    ("suffix at any depth", {"": ["*.log"]}, ["a.log", "d/b.log", "d/a.log.txt", "d/e.log/x"]),
    ("anchored at the start", {"": ["/root.txt"]}, ["root.txt", "d/root.txt"]),
    ("anchored by a middle slash", {"": ["doc/frotz"]}, ["doc/frotz/x", "a/doc/frotz/y"]),
    ("folders only", {"": ["build/"]}, ["build/x", "d/build/y", "e/build", "f/build.txt"]),
    ("anchored folder only", {"": ["/out/"]}, ["out/x", "d/out/y", "out2/z"]),
    ("star stays in one folder", {"": ["doc/*.txt"]}, ["doc/a.txt", "doc/sub/b.txt", "x/doc/a.txt"]),
    ("question mark", {"": ["?.md"]}, ["a.md", "ab.md", "d/c.md"]),
    ("leading double star", {"": ["**/foo"]}, ["foo", "a/foo", "a/b/foo/x", "a/xfoo"]),
    ("leading double star, two parts", {"": ["**/foo/bar"]}, ["foo/bar", "a/foo/bar", "a/foo/x/bar"]),
    ("trailing double star", {"": ["abc/**"]}, ["abc/x", "abc/d/y", "abcd/z", "q/abc/x"]),
    ("middle double star", {"": ["a/**/b"]}, ["a/b", "a/x/b", "a/x/y/b", "a/xb", "q/a/b"]),
    ("double star then a suffix", {"": ["foo/**/*.txt"]}, ["foo/a.txt", "foo/x/y/b.txt", "foo/c.md"]),
    ("double star then a slash", {"": ["foo/**/"]}, ["foo/a", "foo/b/c", "foo/d/"]),
    ("double star alone", {"": ["**"]}, ["a", "b/c"]),
    ("double star and a slash alone", {"": ["**/"]}, ["a", "b/c", "d/"]),
    ("three stars", {"": ["***"]}, ["a", "b/c"]),
    ("stars inside a name", {"": ["a**b"]}, ["axxb", "ab", "a/b", "d/azzb"]),
    ("star slash", {"": ["*/"]}, ["a", "b/c", "d/e/f"]),
    ("star slash suffix", {"": ["*/*.txt"]}, ["a.txt", "b/c.txt", "d/e/f.txt"]),
    ("slash double star in the middle, anchored", {"": ["/**/x"]}, ["x", "a/x", "a/b/x"]),
    ("negation", {"": ["*.txt", "!keep.txt"]}, ["a.txt", "keep.txt", "d/keep.txt", "d/b.txt"]),
    (
        "negation cannot reach into an ignored folder",
        {"": ["logs/", "!logs/keep.log"]},
        ["logs/keep.log", "logs/x.log"],
    ),
    (
        "negation inside a star folder",
        {"": ["logs/*", "!logs/keep.log"]},
        ["logs/keep.log", "logs/x.log", "logs/sub/keep.log"],
    ),
    (
        "git documentation: keep only foo/bar",
        {"": ["/*", "!/foo", "/foo/*", "!/foo/bar"]},
        ["a", "foo/bar/x", "foo/baz/y", "foo/q", "d/foo/bar/z"],
    ),
    ("negated folder", {"": ["build/", "!build/"]}, ["build/x"]),
    ("a later rule wins", {"": ["!a.txt", "a.txt"]}, ["a.txt"]),
    ("negated folder-only rule and a file", {"": ["x*", "!x/"]}, ["x/y", "xa", "xb/z"]),
    ("escaped hash and bang", {"": ["\\#file", "\\!important"]}, ["#file", "!important", "file"]),
    ("comment and hash inside a name", {"": ["#comment", "a#b"]}, ["#comment", "a#b"]),
    ("trailing spaces", {"": ["trail   ", "esc\\ "]}, ["trail", "trail   ", "esc ", "esc"]),
    ("leading spaces count", {"": ["  lead"]}, ["  lead", "lead"]),
    ("escaped star and question mark", {"": ["\\*star", "q\\?"]}, ["*star", "xstar", "q?", "qa"]),
    ("escaped brackets", {"": ["\\[abc\\]"]}, ["[abc]", "a"]),
    ("character class", {"": ["[abc].txt"]}, ["a.txt", "d.txt", "ab.txt"]),
    ("negated class with !", {"": ["[!abc].txt"]}, ["a.txt", "d.txt"]),
    ("negated class with ^", {"": ["[^abc].txt"]}, ["a.txt", "d.txt"]),
    ("range", {"": ["file[0-9].log"]}, ["file7.log", "filex.log", "file10.log"]),
    ("bracket first in a class", {"": ["[]x]y"]}, ["]y", "xy", "ay"]),
    ("negated bracket first in a class", {"": ["[!]x]y"]}, ["]y", "xy", "ay"]),
    ("dash at the end of a class", {"": ["[a-]z"]}, ["az", "-z", "bz"]),
    ("escape in a class", {"": ["[\\]]z"]}, ["]z", "\\z"]),
    ("POSIX class digit", {"": ["[[:digit:]]*.log"]}, ["1a.log", "a1.log"]),
    ("POSIX class alpha and space", {"": ["x[[:alpha:]][[:space:]]y"]}, ["xa y", "x1 y", "xay"]),
    ("unclosed bracket", {"": ["a[b"]}, ["a[b", "ab"]),
    ("class cannot match a slash", {"": ["a[/]b"]}, ["a/b", "a[/]b"]),
    ("star cannot match a slash", {"": ["a*b"]}, ["a/b", "a/x/b", "ab"]),
    ("a trailing backslash", {"": ["foo\\"]}, ["foo", "foo\\"]),
    ("lone bang and lone slash", {"": ["!", "/"]}, ["a", "b/c"]),
    ("case matters", {"": ["README"]}, ["README", "readme", "d/Readme"]),
    ("non-ASCII names", {"": ["café*", "*.TXT"]}, ["café.txt", "cafe.txt", "a.TXT", "a.txt"]),
    ("dots", {"": [".hidden", "*."]}, [".hidden", "d/.hidden/x", "a.", "a"]),
    ("CRLF line endings", {"": ["crlf.txt\r", "*.bak\r"]}, ["crlf.txt", "a.bak"]),
    (
        "nested file: own folder only",
        {"": ["*.tmp"], "sub": ["*.txt", "!keep.tmp", "/local"]},
        [
            "a.tmp",
            "a.txt",
            "sub/a.txt",
            "sub/keep.tmp",
            "sub/x/keep.tmp",
            "sub/local/y",
            "local",
            "sub/x/local",
        ],
    ),
    (
        "nested file cannot undo a parent's folder rule",
        {"": ["cache/"], "cache": ["!*"]},
        ["cache/a", "x/cache/b"],
    ),
    (
        "nested file re-includes what the parent ignores",
        {"": ["*.dat"], "keep": ["!*.dat"]},
        ["a.dat", "keep/b.dat", "keep/deep/c.dat"],
    ),
    ("nested anchored double star", {"sub": ["/**/gen"]}, ["gen/x", "sub/gen/y", "sub/a/gen/z"]),
]


def _git_env(home: str) -> dict[str, str]:
    # No user or system configuration: a global excludesFile would change the answers.
    env = dict(os.environ, HOME=home, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_SYSTEM=os.devnull)
    env.pop("GIT_DIR", None)
    return env


def _all_paths(paths: Sequence[str]) -> list[tuple[str, bool]]:
    """Every path and every folder above one, as (relative path, is folder), sorted."""
    found: dict[str, bool] = {}
    for path in paths:
        is_dir = path.endswith("/")
        parts = path.rstrip("/").split("/")
        for depth in range(1, len(parts)):
            found["/".join(parts[:depth])] = True
        found["/".join(parts)] = is_dir or found.get("/".join(parts), False)
    return sorted(found.items())


def _build_case(root: Path, files: dict[str, list[str]], paths: Sequence[str]) -> list[tuple[str, bool]]:
    entries = _all_paths(paths)
    for path, is_dir in entries:
        target = root / path
        if is_dir:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("x")
    for folder, lines in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        # newline="" keeps a case's own "\r" endings as written.
        with open(root / folder / ".gitignore", "w", encoding="utf-8", newline="") as handle:
            handle.write("".join(line + "\n" for line in lines))
    return entries


def git_verdicts(root: Path, entries: Sequence[tuple[str, bool]], home: str) -> dict[str, bool]:
    """Whether git ignores each path, by `git check-ignore -v -n` (a `!` pattern that
    matches last means not ignored)."""
    stdin = "".join(f"{path}\0" for path, _ in entries)
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-v", "-n", "-z", "--stdin"],
        cwd=root,
        input=stdin.encode(),
        capture_output=True,
        env=_git_env(home),
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(result.stderr.decode(errors="replace"))
    fields = result.stdout.decode().split("\0")
    verdicts: dict[str, bool] = {}
    for i in range(0, len(fields) - 3, 4):
        _source, _line, pattern, path = fields[i : i + 4]
        verdicts[path] = bool(pattern) and not pattern.startswith("!")
    return verdicts


class OursWalk:
    """Our matcher as the indexer's walk uses it (no default patterns, so only the
    .gitignore files decide)."""

    name = "localsearch.exclude"

    def __init__(self, root: Path) -> None:
        from localsearch.core.exclude import Exclusions, Rules

        self.root = root
        self.exclusions = Exclusions(use_gitignore=True)
        self.exclusions.base = Rules()

    def ignored(self, path: str, is_dir: bool) -> bool:
        return not self.exclusions.allows(self.root, self.root / path)


class PathspecWalk:
    """pathspec's GitIgnoreSpec, one spec per .gitignore, asked folder by folder from the
    root down as a walk would (a deeper file's verdict first, a folder asked as "name/")."""

    name = "pathspec GitIgnoreSpec (walk)"

    def __init__(self, root: Path) -> None:
        import pathspec

        self.specs: dict[str, Any] = {}
        for dirpath, _dirs, names in os.walk(root):
            if ".gitignore" in names:
                folder = Path(dirpath).relative_to(root).as_posix()
                folder = "" if folder == "." else folder
                # Lines without their "\n": given the file itself, pathspec 1.1.1 also
                # refuses an escaped trailing space ("name\ ").
                text = (Path(dirpath) / ".gitignore").read_text(encoding="utf-8")
                self.specs[folder] = pathspec.GitIgnoreSpec.from_lines(text.splitlines())

    def _decide(self, path: str, is_dir: bool) -> bool:
        parts = path.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            folder = "/".join(parts[:depth])
            spec = self.specs.get(folder)
            if spec is None:
                continue
            below = "/".join(parts[depth:]) + ("/" if is_dir else "")
            include = spec.check_file(below).include
            if include is not None:
                return bool(include)
        return False

    def ignored(self, path: str, is_dir: bool) -> bool:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if self._decide("/".join(parts[:depth]), True):
                return True
        return self._decide(path, is_dir)


class PathspecNaive:
    """pathspec as most callers use it: the root .gitignore in one spec, `match_file` on
    the bare path, folders and nested .gitignore files not told apart."""

    name = "pathspec GitIgnoreSpec (match_file)"

    def __init__(self, root: Path) -> None:
        import pathspec

        top = root / ".gitignore"
        if not top.exists():
            self.spec = pathspec.GitIgnoreSpec.from_lines([])
            return
        self.spec = pathspec.GitIgnoreSpec.from_lines(top.read_text(encoding="utf-8").splitlines())

    def ignored(self, path: str, is_dir: bool) -> bool:
        return bool(self.spec.match_file(path))


MATCHERS: list[Callable[[Path], Any]] = [OursWalk, PathspecWalk, PathspecNaive]


def gitignore_correctness() -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    totals = {m.name: {"agree": 0, "paths": 0, "cases_all_agree": 0} for m in MATCHERS}  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="libcompare-git-") as scratch:
        for number, (name, files, paths) in enumerate(GITIGNORE_CASES):
            root = Path(scratch) / f"case{number}"
            root.mkdir()
            subprocess.run(["git", "init", "-q", str(root)], check=True, env=_git_env(scratch))
            entries = _build_case(root, files, paths)
            truth = git_verdicts(root, entries, scratch)
            row: dict[str, Any] = {"case": name, "gitignore": files, "paths": {}}
            for path, _ in entries:
                row["paths"][path] = {"git": truth[path]}
            for factory in MATCHERS:
                name = factory.name  # type: ignore[attr-defined]
                try:
                    matcher = factory(root)
                    broken = None
                except Exception as exc:  # a pattern the library refuses fails the whole file
                    matcher, broken = None, f"error: {type(exc).__name__}: {exc}"
                wrong = []
                for path, is_dir in entries:
                    got: bool | str
                    if matcher is None:
                        got = broken or "error"
                    else:
                        try:
                            got = matcher.ignored(path, is_dir)
                        except Exception as exc:
                            got = f"error: {type(exc).__name__}: {exc}"
                    row["paths"][path][name] = got
                    if got != truth[path]:
                        wrong.append(path)
                total = totals[name]
                total["paths"] += len(entries)
                total["agree"] += len(entries) - len(wrong)
                total["cases_all_agree"] += not wrong
                row.setdefault("disagreements", {})[name] = wrong
            rows.append(row)
    return {"cases": len(GITIGNORE_CASES), "totals": totals, "table": rows}


# Random patterns over the characters that make globs tricky, each asked of git and of
# both matchers on the same paths (seeded, so the run is repeatable).
_RANDOM_PIECES = [*"ab[]!^-\\*?/:", "[:digit:]", "[:alpha:]", "**", "/**/", "a", "b"]
_RANDOM_NAMES = [
    "a",
    "b",
    "ab",
    "ba",
    "a-b",
    "]",
    "[",
    "!",
    "^",
    "-",
    "*a",
    "a?",
    "1",
    "a:b",
    "\\",
    "[a]",
    "a b",
]


def gitignore_random(count: int, seed: int = 1) -> dict[str, Any]:
    import random

    rng = random.Random(seed)
    paths = sorted({p for n in _RANDOM_NAMES for p in (n, f"a/{n}", f"ab/{n}", f"a/a/{n}", f"b/ab/{n}")})
    entries = _all_paths(paths)
    disagreeing: dict[str, list[str]] = {m.name: [] for m in MATCHERS[:2]}  # type: ignore[attr-defined]
    asked = 0
    with tempfile.TemporaryDirectory(prefix="libcompare-random-") as scratch:
        root = Path(scratch) / "repo"
        subprocess.run(["git", "init", "-q", str(root)], check=True, env=_git_env(scratch))
        _build_case(root, {}, paths)
        while asked < count:
            pattern = "".join(rng.choice(_RANDOM_PIECES) for _ in range(rng.randint(1, 6)))
            if pattern.startswith("#") or pattern.strip() != pattern:
                continue  # comments and blank edges are tested by the table
            asked += 1
            (root / ".gitignore").write_text(pattern + "\n")
            truth = git_verdicts(root, entries, scratch)
            for factory in MATCHERS[:2]:
                try:
                    matcher = factory(root)
                    wrong = any(matcher.ignored(p, d) != truth[p] for p, d in entries)
                except Exception:  # a pattern the library refuses loses the whole file
                    wrong = True
                if wrong:
                    disagreeing[factory.name].append(pattern)  # type: ignore[attr-defined]
    return {
        "patterns": count,
        "seed": seed,
        "paths_per_pattern": len(entries),
        "disagreeing_patterns": {name: len(found) for name, found in disagreeing.items()},
        "examples": {name: found[:15] for name, found in disagreeing.items()},
    }


# A realistic ignore file for the speed test: what a Python/JS/editor project ignores.
SPEED_PATTERNS = [
    "__pycache__/", "*.py[cod]", "*$py.class", "*.so", ".Python", "build/", "develop-eggs/",
    "dist/", "downloads/", "eggs/", ".eggs/", "/lib/", "/lib64/", "parts/", "sdist/", "var/",
    "wheels/", "*.egg-info/", ".installed.cfg", "*.egg", "MANIFEST", "*.manifest", "*.spec",
    "pip-log.txt", "htmlcov/", ".tox/", ".nox/", ".coverage", ".coverage.*", ".cache",
    "nosetests.xml", "coverage.xml", "*.cover", ".hypothesis/", ".pytest_cache/", "*.mo",
    "*.pot", "*.log", "local_settings.py", "db.sqlite3", "instance/", ".webassets-cache",
    ".scrapy", "docs/_build/", "target/", ".ipynb_checkpoints", "profile_default/",
    "ipython_config.py", ".env", ".venv", "env/", "venv/", "ENV/", ".spyderproject",
    ".ropeproject", "/site", ".mypy_cache/", ".dmypy.json", ".pyre/", "node_modules/",
    "npm-debug.log*", "*.tsbuildinfo", ".DS_Store", "Thumbs.db", "*.swp", "*~", ".idea/",
    ".vscode/*", "!.vscode/settings.json", "**/generated/**", "docs/**/*.tmp", "[Bb]in/",
    "[Oo]bj/", "*.[oa]", "!important.log",
]  # fmt: skip


def _tree_paths(trees: Sequence[Path]) -> list[tuple[str, bool]]:
    """Every path under the trees (not inside .git), relative to its tree."""
    found: list[tuple[str, bool]] = []
    for tree in trees:
        for dirpath, dirs, names in os.walk(tree):
            dirs[:] = [d for d in dirs if d != ".git"]
            base = Path(dirpath).relative_to(tree).as_posix()
            prefix = "" if base == "." else base + "/"
            found.extend((prefix + d, True) for d in dirs)
            found.extend((prefix + n, False) for n in names)
    return found


def gitignore_speed(trees: Sequence[Path], repeats: int) -> dict[str, Any]:
    """µs per path for one match call of each matcher, the same rules and paths, the
    matchers interleaved; and how often the two disagree on these real paths."""
    import pathspec

    from localsearch.core.exclude import Rules

    paths = _tree_paths(trees)
    ours = Rules.parse(SPEED_PATTERNS)
    spec = pathspec.GitIgnoreSpec.from_lines(SPEED_PATTERNS)
    asked = [(p + "/" if d else p) for p, d in paths]  # pathspec tells folders by the slash

    def run_ours() -> list[bool]:
        match = ours.match
        return [match(p, d) is True for p, d in paths]

    def run_pathspec() -> list[bool]:
        check = spec.check_file
        return [check(p).include is True for p in asked]

    timings: dict[str, list[float]] = {"localsearch.exclude": [], "pathspec GitIgnoreSpec": []}
    verdicts: dict[str, list[bool]] = {}
    for _ in range(repeats):
        for name, run in (("localsearch.exclude", run_ours), ("pathspec GitIgnoreSpec", run_pathspec)):
            start = time.perf_counter()
            verdicts[name] = run()
            timings[name].append((time.perf_counter() - start) / len(paths) * 1e6)
    # What a walk makes of the verdicts: a path inside an ignored folder is never reached.
    effective: dict[str, dict[str, bool]] = {}
    for name, own in verdicts.items():
        by_path = {(p, d): v for (p, d), v in zip(paths, own, strict=True)}
        seen: dict[str, bool] = {}
        for (path, is_dir), verdict in by_path.items():
            parent = path.rpartition("/")[0]
            seen[path + "/" * is_dir] = verdict or (bool(parent) and seen.get(parent + "/", False))
        effective[name] = seen
    ours_seen, theirs_seen = effective["localsearch.exclude"], effective["pathspec GitIgnoreSpec"]
    differing = sorted(p for p in ours_seen if ours_seen[p] != theirs_seen[p])
    backend = type(spec._backend).__module__  # which regex engine pathspec picked
    return {
        # Named as the checkout sees them (".." for the shared folder beside it).
        "trees": [os.path.relpath(t, common.PROJECT_DIR) for t in trees],
        "paths": len(paths),
        "patterns": len(SPEED_PATTERNS),
        "repeats": repeats,
        "pathspec_backend": backend,
        "us_per_path": {
            name: {"median": statistics.median(v), "min": min(v), "max": max(v)}
            for name, v in timings.items()
        },
        "ignored_by_a_walk": {name: sum(v.values()) for name, v in effective.items()},
        "disagreements": len(differing),
        "disagreement_examples": differing[:20],
    }


# --- output -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
    }


def _versions(names: Sequence[str]) -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _installed_bytes(name: str) -> int:
    from importlib import metadata

    files = metadata.distribution(name).files or []
    return sum(f.size or 0 for f in files if f.size)


def installed_footprint(names: Sequence[str]) -> dict[str, Any]:
    """What each library brings into a bundle: its own installed size and that of every
    package it pulls in (its requirements, recursively, extras left out)."""
    import re as _re
    from importlib import metadata

    found: dict[str, Any] = {}
    for name in names:
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            key = _re.sub(r"[-_.]+", "-", current).lower()
            if key in seen:
                continue
            try:
                requirements = metadata.requires(current) or []
            except metadata.PackageNotFoundError:
                continue
            seen.add(key)
            for requirement in requirements:
                if "extra ==" in requirement:
                    continue
                pending.append(_re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0])
        sizes = {}
        for package in sorted(seen):
            try:
                sizes[package] = _installed_bytes(package)
            except metadata.PackageNotFoundError:
                continue
        found[name] = {
            "installed_kb": round(sizes.get(_re.sub(r"[-_.]+", "-", name).lower(), 0) / 1024),
            "with_requirements_kb": round(sum(sizes.values()) / 1024),
            "requirements": sorted(set(sizes) - {_re.sub(r"[-_.]+", "-", name).lower()}),
        }
    return found


def print_gitignore(result: dict[str, Any]) -> None:
    correct = result["correctness"]
    print(f"\n.gitignore: {correct['cases']} cases, agreement with git check-ignore")
    print(f"{'matcher':40} {'paths agree':>14} {'cases all agree':>16}")
    for name, total in correct["totals"].items():
        agree = f"{total['agree']:>7}/{total['paths']:<6}"
        print(f"{name:40} {agree} {total['cases_all_agree']:>9}/{correct['cases']}")
    randomized = result["random_patterns"]
    header = f"{randomized['patterns']} random patterns (seed {randomized['seed']})"
    print(f"\n{header}: patterns where a path disagrees with git")
    for name, number in randomized["disagreeing_patterns"].items():
        print(f"{name:40} {number:>7}")
    speed = result.get("speed")
    if speed:
        print(
            f"\nspeed: {speed['paths']} real paths, {speed['patterns']} patterns, {speed['repeats']} repeats"
        )
        for name, figures in speed["us_per_path"].items():
            spread = f"(min {figures['min']:.2f}, max {figures['max']:.2f})"
            print(f"{name:40} {figures['median']:6.2f} µs/path {spread}")
        print(f"{'disagreements on the real paths':40} {speed['disagreements']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("gitignore", "extract"))
    parser.add_argument("--tree", action="append", type=Path, help="trees for the speed test")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--random-patterns", type=int, default=400)
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    trees = args.tree or [common.shared_dir(), common.PROJECT_DIR]
    trees = [t for t in trees if t.is_dir()]

    previous: dict[str, Any] = {}
    if args.out.exists() and args.only:
        previous = json.loads(args.out.read_text())  # a partial run keeps the other part
    result: dict[str, Any] = dict(previous)
    result["machine"] = machine()
    result["versions"] = _versions(
        ["pathspec", "python-docx", "odfpy", "ebooklib", "lxml", "selectolax", "trafilatura", "defusedxml"]
    )
    result["footprint"] = installed_footprint(
        ["pathspec", "python-docx", "odfpy", "ebooklib", "lxml", "selectolax", "trafilatura", "defusedxml"]
    )
    if args.only in (None, "gitignore"):
        if shutil.which("git") is None:
            raise SystemExit("git is needed for the .gitignore comparison")
        result["gitignore"] = {
            "correctness": gitignore_correctness(),
            "random_patterns": gitignore_random(args.random_patterns),
            "speed": gitignore_speed(trees, args.repeats) if trees else None,
        }
        print_gitignore(result["gitignore"])
    if args.only in (None, "extract"):
        import extract_compare

        result["extract"] = extract_compare.run(args.repeats)
        extract_compare.print_table(result["extract"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
