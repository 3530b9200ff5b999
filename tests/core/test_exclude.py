"""Exclusions: the .gitignore matcher, defaults, user patterns, .gitignore files, links."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from localsearch.core.exclude import Exclusions, Rules


def _ignored(lines: list[str], path: str, is_dir: bool = False) -> bool:
    return Rules.parse(lines).match(path, is_dir) is True


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        # A name without a slash matches at any depth, files and folders.
        ("*.log", "a.log", False, True),
        ("*.log", "deep/er/a.log", False, True),
        ("*.log", "a.log.txt", False, False),
        ("build", "build", True, True),
        ("build", "src/build", False, True),
        # A trailing slash: folders only.
        ("build/", "build", True, True),
        ("build/", "build", False, False),
        ("build/", "src/build", True, True),
        # A slash at the start or in the middle anchors to the root.
        ("/todo.txt", "todo.txt", False, True),
        ("/todo.txt", "sub/todo.txt", False, False),
        ("doc/frotz", "doc/frotz", True, True),
        ("doc/frotz", "a/doc/frotz", True, False),
        # Wildcards never cross a slash.
        ("doc/*.txt", "doc/a.txt", False, True),
        ("doc/*.txt", "doc/sub/a.txt", False, False),
        ("?.md", "a.md", False, True),
        ("?.md", "ab.md", False, False),
        # Double stars.
        ("**/logs", "logs", True, True),
        ("**/logs", "x/y/logs", True, True),
        ("**/logs/debug.log", "a/logs/debug.log", False, True),
        ("logs/**", "logs/a/b.txt", False, True),
        ("logs/**", "logs", True, False),
        ("a/**/b", "a/b", True, True),
        ("a/**/b", "a/x/y/b", True, True),
        ("a/**/b", "ab", True, False),
        ("a**b", "axxb", False, True),
        # Classes.
        ("*.[oa]", "x.o", False, True),
        ("*.[oa]", "x.c", False, False),
        ("*.[!oa]", "x.c", False, True),
        ("*.[!oa]", "x.o", False, False),
        ("file[0-9].txt", "file7.txt", False, True),
        ("file[0-9].txt", "filex.txt", False, False),
        # Named classes, ranges and escapes inside a class, as git's wildmatch reads them.
        ("[[:digit:]]*.log", "1a.log", False, True),
        ("[[:digit:]]*.log", "a1.log", False, False),
        ("x[[:alpha:]][[:space:]]y", "xa y", False, True),
        ("x[[:alpha:]][[:space:]]y", "x1 y", False, False),
        ("[]x]y", "]y", False, True),
        ("[!]x]y", "]y", False, False),
        ("[!]x]y", "ay", False, True),
        ("[\\]]z", "]z", False, True),
        ("[a-]z", "-z", False, True),
        ("[[:a]", ":", False, True),  # no ":]" before the "]": "[", ":" and "a" are members
        ("a[/]b", "a/b", False, False),  # a class never matches the separator
        # What git gives up on matches nothing (checked with git 2.39's check-ignore): an
        # unclosed bracket, a trailing backslash, an unknown class name, a reversed range.
        ("[", "[", False, False),
        ("a[b", "a[b", False, False),
        ("foo\\", "foo\\", False, False),
        ("foo\\", "foo", False, False),
        ("foo\\\\", "foo\\", False, True),
        ("[[:bogus:]]", "b", False, False),
        ("[z-a]", "m", False, False),
        # Only one slash at each end has a meaning; an escaped slash still separates folders.
        ("x//", "x", True, False),
        ("//**/", "x", True, False),
        ("a\\/**", "a/b", True, True),
        ("a\\/**", "a", True, False),
        # Escapes, comments and spaces.
        ("\\#notes", "#notes", False, True),
        ("#notes", "#notes", False, False),
        ("\\!keep", "!keep", False, True),
        ("trail   ", "trail", False, True),
        ("space\\ ", "space ", False, True),
        ("name with space", "name with space", False, True),
        ("a+b(c).txt", "a+b(c).txt", False, True),
    ],
)
def test_gitignore_pattern_semantics(pattern: str, path: str, is_dir: bool, expected: bool) -> None:
    assert _ignored([pattern], path, is_dir) is expected


def test_the_last_matching_pattern_wins_and_negation_includes_again() -> None:
    rules = Rules.parse(["*.txt", "!keep.txt", "# a comment", "", "keep.txt/"])
    assert rules.match("a.txt", False) is True
    assert rules.match("keep.txt", False) is False
    assert rules.match("keep.txt", True) is True  # the later dir-only rule wins for folders
    assert rules.match("other.md", False) is None


def test_rules_of_a_nested_gitignore_apply_below_its_folder_only() -> None:
    rules = Rules.parse(["/out", "*.tmp"], base="pkg")
    assert rules.match("pkg/out", True) is True
    assert rules.match("out", True) is None
    assert rules.match("pkg/sub/out", True) is None  # anchored to pkg/
    assert rules.match("pkg/sub/x.tmp", False) is True
    assert rules.match("pkgx/x.tmp", False) is None


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def _walk(exclusions: Exclusions, root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in exclusions.walk(root)]


def test_defaults_skip_tool_state_hidden_entries_and_virtualenvs(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        [
            "notes.md",
            "src/main.py",
            ".git/config",
            ".hidden.txt",
            ".config/app.toml",
            "node_modules/pkg/index.js",
            "src/__pycache__/main.cpython-311.pyc",
            "myenv/pyvenv.cfg",
            "myenv/lib/site.py",
            "venv/lib/x.py",
            "draft.txt~",
            "download.pdf.crdownload",
        ],
    )
    assert _walk(Exclusions(), tmp_path) == ["notes.md", "src/main.py"]


def test_user_patterns_exclude_and_can_bring_back_a_default(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.txt", "b.log", "build/out.txt", "docs/build/keep.txt", ".notes/n.md", "drafts/d.md"])
    rules = Exclusions(["*.log", "/build/", "drafts/**", "!.notes/"])
    assert _walk(rules, tmp_path) == ["a.txt", ".notes/n.md", "docs/build/keep.txt"]


def test_gitignore_files_are_honoured_only_when_asked(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.txt", "dist/x.txt", "pkg/gen.txt", "pkg/src.txt", "pkg/sub/gen.txt", "secret.txt"])
    (tmp_path / ".gitignore").write_text("dist/\nsecret.txt\n")
    (tmp_path / "pkg" / ".gitignore").write_text("/gen.txt\n")
    everything = _walk(Exclusions(), tmp_path)
    assert "dist/x.txt" in everything and "secret.txt" in everything
    honoured = _walk(Exclusions(use_gitignore=True), tmp_path)
    assert honoured == ["a.txt", "pkg/src.txt", "pkg/sub/gen.txt"]
    # A .gitignore is more specific than the user's patterns and read after them, as in git.
    assert _walk(Exclusions(["!secret.txt"], use_gitignore=True), tmp_path) == honoured


def test_allows_agrees_with_walk(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.txt", "dist/x.txt", "pkg/gen.txt", "pkg/ok.txt", "node_modules/m.txt"])
    (tmp_path / "pkg" / ".gitignore").write_text("gen.txt\n")
    rules = Exclusions(["dist/"], use_gitignore=True)
    walked = set(_walk(rules, tmp_path))
    for path in tmp_path.rglob("*"):
        if path.is_file():
            rel = path.relative_to(tmp_path).as_posix()
            assert rules.allows(tmp_path, path) == (rel in walked), rel
    assert not rules.allows(tmp_path, tmp_path / "elsewhere" / ".." / ".." / "x.txt")


def test_walk_from_a_subfolder_keeps_the_parent_rules(tmp_path: Path) -> None:
    _tree(tmp_path, ["pkg/sub/gen.txt", "pkg/sub/ok.txt"])
    (tmp_path / ".gitignore").write_text("gen.txt\n")
    rules = Exclusions(use_gitignore=True)
    found = [p.name for p in rules.walk(tmp_path, tmp_path / "pkg" / "sub")]
    assert found == ["ok.txt"]
    assert list(Exclusions(["pkg/"]).walk(tmp_path, tmp_path / "pkg" / "sub")) == []


def test_links_are_never_followed_and_loops_end(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    _tree(root, ["in.txt"])
    _tree(outside, ["secret.txt"])
    os.symlink(outside, root / "link-out")
    os.symlink(outside / "secret.txt", root / "secret-link.txt")
    os.symlink(root, root / "loop")
    os.symlink(root / "missing", root / "dangling.txt")
    assert _walk(Exclusions(), root) == ["in.txt"]
    assert not Exclusions().allows(root, root / "link-out" / "secret.txt")


def test_excluded_folders_are_never_entered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path, ["a.txt", "node_modules/deep/x.txt", "big/data.txt"])
    opened: list[str] = []
    real_scandir = os.scandir

    def spying_scandir(path: str) -> object:
        opened.append(os.path.basename(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spying_scandir)
    assert _walk(Exclusions(["big/"]), tmp_path) == ["a.txt"]
    assert "node_modules" not in opened and "big" not in opened and "deep" not in opened


# (.gitignore files by folder, paths) whose verdicts are asked of git itself below.
_GIT_CASES: list[tuple[dict[str, str], list[str]]] = [
    (
        {"": "*.log\n/root.txt\nbuild/\n"},
        ["a.log", "d/b.log", "root.txt", "d/root.txt", "e/build", "f/build/x"],
    ),
    ({"": "abc/**\na/**/b\n**/foo\n"}, ["abc/x", "abc/d/y", "a/b", "a/x/y/b", "a/xb", "q/foo/z"]),
    ({"": "logs/\n!logs/keep.log\nout/*\n!out/keep\n"}, ["logs/keep.log", "out/keep", "out/other"]),
    ({"": "/*\n!/foo\n/foo/*\n!/foo/bar\n"}, ["a", "foo/bar/x", "foo/baz/y", "foo/q"]),
    (
        {"": "[[:digit:]]*.dat\n[!]x]y\n[\\]]z\na[b\nfoo\\\n[z-a]\n"},
        ["1a.dat", "a1.dat", "]y", "ay", "]z", "a[b", "foo", "m"],
    ),
    ({"": "\\#hash\ntrail   \nesc\\ \n"}, ["#hash", "trail", "esc ", "esc"]),
    (
        {"": "*.tmp\n", "sub": "*.txt\n!keep.tmp\n/local\n"},
        ["a.tmp", "a.txt", "sub/a.txt", "sub/keep.tmp", "sub/x/keep.tmp", "sub/local/y", "sub/x/local"],
    ),
    ({"": "cache/\n", "cache": "!*\n"}, ["cache/a"]),
]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize(("files", "paths"), _GIT_CASES)
def test_walk_verdicts_agree_with_git_check_ignore(
    tmp_path: Path, files: dict[str, str], paths: list[str]
) -> None:
    """Every path and the folders above it: what a walk skips is what git ignores."""
    env = dict(os.environ, HOME=str(tmp_path), GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_SYSTEM=os.devnull)
    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    _tree(root, paths)
    for folder, text in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / ".gitignore").write_text(text)
    asked = sorted({"/".join(p.split("/")[:n]) for p in paths for n in range(1, p.count("/") + 2)})
    answer = subprocess.run(
        ["git", "check-ignore", "--no-index", "-v", "-n", "-z", "--stdin"],
        cwd=root,
        input="".join(f"{p}\0" for p in asked).encode(),
        capture_output=True,
        env=env,
        check=False,
    )
    fields = answer.stdout.decode().split("\0")
    git = {
        fields[i + 3]: bool(fields[i + 2]) and not fields[i + 2].startswith("!")
        for i in range(0, len(fields) - 3, 4)
    }
    assert sorted(git) == asked
    exclusions = Exclusions(use_gitignore=True)
    exclusions.base = Rules()  # only the .gitignore files decide, as for git
    ours = {p: not exclusions.allows(root, root / p) for p in asked}
    assert ours == git
