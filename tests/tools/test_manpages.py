#!/usr/bin/env python3
"""test_manpages.py: the manual pages are in step with --help.

For each tool given as NAME=PATH, runs `PATH --help` and checks that its
man page (MANDIR/NAME.1) names every long option the help lists, every
short option it pairs with one ("-n, --lines"), and every command (for
evreplay, every command of its prompt; for evbench, every scenario).
A tool whose binary was not built (evbench without SQLite) is skipped.

Usage: test_manpages.py MANDIR NAME=PATH...
Exit status 0 when every page holds everything, 1 otherwise (each gap is
named on stderr), 77 when no tool could be checked.
"""
import os
import re
import shlex
import subprocess
import sys

# Macros whose arguments alternate fonts: joined without blanks.
ALTERNATING = {"BR", "BI", "IB", "IR", "RB", "RI"}


def roff_to_text(src):
    """The words of a man page as plain text, roff markup removed."""
    out = []
    for line in src.splitlines():
        if line.startswith('.\\"'):
            continue
        if line.startswith("."):
            parts = line[1:].split(None, 1)
            macro = parts[0] if parts else ""
            rest = parts[1] if len(parts) > 1 else ""
            try:
                args = shlex.split(rest.replace("\\", "\\\\"), posix=True)
            except ValueError:
                args = rest.split()
            line = ("" if macro in ALTERNATING else " ").join(args)
        line = re.sub(r"\\f[BIRP]", "", line)
        line = line.replace("\\-", "-").replace("\\(dq", '"')
        line = line.replace("\\(en", "-").replace("\\(em", "-")
        line = line.replace("\\\\", "\\")
        out.append(line)
    return re.sub(r"\s+", " ", " ".join(out))


def section(text, start):
    """The lines of `text` after the line beginning with `start`, up to
    the next line that does not begin with a blank (blank lines and
    group headings such as "Moving:" are stepped over)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(start):
            body = []
            for l in lines[i + 1:]:
                if l and not l[0].isspace() and not l.endswith(":"):
                    break
                body.append(l)
            return body
    return []


def wanted(name, help_text):
    """What the man page of `name` must hold: options, then commands."""
    opts = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_text))
    opts |= set(re.findall(r"^\s+(-[a-zA-Z]), --", help_text, re.M))
    cmds = set()
    if name in ("evdump", "evrun"):
        for l in section(help_text, "Commands:"):
            m = re.match(r"^  ([a-z]+)\s", l)
            if m:
                cmds.add(name + " " + m.group(1))
    elif name == "evreplay":
        for l in section(help_text, "Commands ("):
            m = re.match(r"^  ([a-z][a-z|]*(?: [a-z][a-z|]*)*)", l)
            if m:
                cmds.add(m.group(1))
    elif name == "evbench":
        for l in section(help_text, "Scenarios:"):
            m = re.match(r"^  ([a-z0-9]+)\s", l)
            if m:
                cmds.add(m.group(1))
    return sorted(opts), sorted(cmds)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mandir, gaps, checked = sys.argv[1], 0, 0
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        if not os.access(path, os.X_OK):
            print("%s: not built, skipped" % name, file=sys.stderr)
            continue
        help_text = subprocess.run([path, "--help"], check=True,
                                   capture_output=True, text=True).stdout
        with open(os.path.join(mandir, name + ".1"), encoding="utf-8") as f:
            man = roff_to_text(f.read())
        opts, cmds = wanted(name, help_text)
        if not opts or not cmds:
            print("%s: nothing found in --help" % name, file=sys.stderr)
            gaps += 1
        for w in opts:
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(w), man):
                print("%s.1 lacks option %s" % (name, w), file=sys.stderr)
                gaps += 1
        for w in cmds:
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(w), man):
                print("%s.1 lacks command %r" % (name, w), file=sys.stderr)
                gaps += 1
        print("%s: %d options, %d commands checked" % (name, len(opts),
                                                      len(cmds)))
        checked += 1
    if not checked:
        return 77
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
