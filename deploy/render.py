#!/usr/bin/env python3
"""Fill the {{PLACEHOLDERS}} of the deploy/ templates from a KEY=VALUE file.

    python3 deploy/render.py VALUES_FILE OUT_DIR [TEMPLATE ...]

VALUES_FILE: one ``NAME=value`` per line (``#`` comments, blank lines allowed; the value is taken
verbatim, no quotes removed). TEMPLATE: paths relative to deploy/ (default: all of them). Each is
written to OUT_DIR under the same relative path, mode 0600 (it may hold secrets): copy it into place
with the owner and mode deploy/README.md gives.

Exit status 1 if a placeholder is left on a line that is not a comment (a value is missing), 2 on a
usage error. Placeholders left in comments are reported and allowed. Standard library only.
Per-node values (NODE_HOST, NODE_PRIVATE_IP) and per-region ones (TURN_*) mean one VALUES_FILE per
node or region.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
TEMPLATES = (
    "api/coalesce-cloud.toml",
    "systemd/coalesce-cloud.env.example",
    "ejabberd/ejabberd.yml",
    "ejabberd/ejabberdctl.cfg",
    "coturn/turnserver.conf",
    "systemd/epmd.socket.d/coalesce.conf",
)
PLACEHOLDER = re.compile(r"\{\{([A-Z][A-Z0-9_]*)\}\}")
NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def read_values(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not NAME.match(name):
            raise SystemExit(f"{path}:{number}: expected NAME=value with NAME like XMPP_DOMAIN")
        if "{{" in value or "\n" in value:
            raise SystemExit(f"{path}:{number}: the value of {name} may not contain '{{{{'")
        values[name] = value
    return values


def render(template: str, values: dict[str, str], out_dir: Path) -> tuple[list[str], set[str]]:
    """Write one rendered template; return the problems (active lines left unfilled) and the names used."""
    source = DEPLOY / template
    problems: list[str] = []
    used: set[str] = set()
    lines = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(keepends=True), start=1):
        used.update(PLACEHOLDER.findall(line))
        filled = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), line)
        left = PLACEHOLDER.findall(filled)
        if left and not filled.lstrip().startswith("#"):
            problems.append(f"{template}:{number}: no value for {', '.join(sorted(set(left)))}")
        lines.append(filled)
    target = out_dir / template
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.writelines(lines)
    os.chmod(target, 0o600)
    return problems, used


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    values = read_values(Path(argv[0]))
    out_dir = Path(argv[1])
    templates = argv[2:] or list(TEMPLATES)
    unknown = [t for t in templates if not (DEPLOY / t).is_file()]
    if unknown:
        print(f"no such template under {DEPLOY}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    problems: list[str] = []
    used: set[str] = set()
    for template in templates:
        found, names = render(template, values, out_dir)
        problems += found
        used |= names
    for name in sorted(set(values) - used):
        print(f"note: {name} is not used by these templates", file=sys.stderr)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"rendered {len(templates)} file(s) into {out_dir}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
