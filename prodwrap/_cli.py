"""The command line: ``python -m prodwrap report predictions.jsonl [--by TAG] [--json] [--html out.html]``.

``report`` reads an audit log (``pw.AuditLog``'s lines; ``-`` reads standard input) in one
streaming pass (``prodwrap._audit_report``) and prints a table: calls, outcomes, error and
fallback rates, latency percentiles, cost in total and by model version, and, for each
``--by TAG``, the same per value of that tag. ``--json`` prints one JSON object instead;
``--html`` also writes a self-contained page with charts. Lines that are not audit lines are
counted and reported, never fatal. Exit status: 0, or 2 for a usage error or a file that
cannot be read.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from prodwrap._audit_report import Summary

_OUTCOMES = ("ok", "cached", "fallback", "error")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m prodwrap", description="prodwrap's command line")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    report = commands.add_parser("report", help="summarise an audit log (pw.AuditLog's JSON lines)")
    report.add_argument("path", help="the audit log (JSON lines); - reads standard input")
    report.add_argument(
        "--by", action="append", default=[], metavar="TAG", help="break the totals down by a tag (repeatable)"
    )
    report.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    report.add_argument("--html", metavar="OUT", help="also write a self-contained HTML page to OUT")
    return parser


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (or --help)
        return int(exc.code or 0)
    try:
        summary = read(args.path, args.by)
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
        print(f"prodwrap report: cannot read {args.path}: {reason}", file=err)
        return 2
    data = summary.summary()
    if args.json:
        print(json.dumps(data, indent=2), file=out)
    else:
        print(table(args.path, data), file=out)
    if summary.bad:
        shown = ", ".join(map(str, summary.bad_at)) + (", ..." if summary.bad > len(summary.bad_at) else "")
        what = "1 line is not an audit line" if summary.bad == 1 else f"{summary.bad} lines are not audit lines"
        print(f"prodwrap report: {what} (line {shown}); skipped", file=err)
    if args.html:
        try:
            Path(args.html).write_text(page(args.path, data), encoding="utf-8")
        except OSError as exc:
            print(f"prodwrap report: cannot write {args.html}: {exc.strerror or exc}", file=err)
            return 2
    return 0


def read(path: str, by: Sequence[str] = ()) -> Summary:
    """Summarise the audit log at ``path`` (``-``: standard input).

    Raises:
        OSError: the file cannot be opened or read.
    """
    summary = Summary(by)
    if path == "-":
        return summary.read(sys.stdin)
    with open(path, encoding="utf-8", errors="replace") as lines:
        return summary.read(lines)


# -- the table ---------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def _share(n: int, calls: int) -> str:
    return f"{n} ({n / calls:.1%})" if calls else str(n)


def _columns(title: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    head = (title, "calls", "errors", "fallbacks", "p50", "p95", "cost")
    rows = [head] + [
        (
            key,
            str(g["calls"]),
            f"{g['error_rate']:.1%}",
            f"{g['fallback_rate']:.1%}",
            _ms(g["latency_p50"]),
            _ms(g["latency_p95"]),
            g["cost"] + (f" (+{g['unpriced']} unpriced)" if g["unpriced"] else ""),
        )
        for key, g in groups.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def table(path: str, data: dict[str, Any]) -> str:
    """The summary as aligned text."""
    calls = data["calls"]
    rows: list[tuple[str, str]] = [
        ("audit log", f"{path}: {data['lines']} lines, {data['bad_lines']} bad"),
        ("time", f"{data['first']} .. {data['last']}" if data["first"] else "-"),
        ("calls", str(calls)),
    ]
    outcomes = data["outcomes"]
    for outcome in sorted(outcomes, key=lambda o: (_OUTCOMES.index(o) if o in _OUTCOMES else 4, o)):
        rows.append((f"  {outcome}", _share(outcomes[outcome], calls)))
    rows += [
        ("error rate", f"{data['error_rate']:.2%}"),
        ("fallback rate", f"{data['fallback_rate']:.2%}"),
        (
            "latency p50/p95/p99",
            f"{_ms(data['latency_p50'])} / {_ms(data['latency_p95'])} / {_ms(data['latency_p99'])}",
        ),
        ("cost", data["cost"] + (f"  (unpriced calls: {data['unpriced']})" if data["unpriced"] else "")),
    ]
    if data["failures"]:
        rows.append(("failures", f"{sum(data['failures'].values())}  (failed attempts, by reason)"))
        rows += [(f"  {reason}", str(n)) for reason, n in data["failures"].items()]
    width = max(len(key) for key, _ in rows)
    lines = [f"{key:<{width}}  {value}" for key, value in rows]
    lines += ["", "by version", *_columns("model version", data["versions"])]
    for tag, groups in data.get("by", {}).items():
        lines += ["", f"by {tag}", *_columns(tag, groups)]
    return "\n".join(lines)


# -- the page ------------------------------------------------------------------------------------


def _bars(values: dict[str, float], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG."""
    if not values:
        return "<p>-</p>"
    top = max(values.values()) or 1.0
    height = 22 * len(values)
    bars = []
    for i, (label, value) in enumerate(values.items()):
        y = 22 * i
        width = 300 * value / top
        bars.append(
            f"<text x='0' y='{y + 15}'>{html.escape(label[:28])}</text>"
            f"<rect x='200' y='{y + 3}' width='{width:.1f}' height='16' fill='#4a7bd0'/>"
            f"<text x='{205 + width:.1f}' y='{y + 15}'>{value:g}{unit}</text>"
        )
    return f"<svg width='620' height='{height}' font-family='sans-serif' font-size='12'>{''.join(bars)}</svg>"


def page(path: str, data: dict[str, Any]) -> str:
    """The summary as a self-contained HTML page (no scripts, no external files)."""
    title = html.escape(f"prodwrap report: {path}")
    latency = {f"p{q}": round((data[f"latency_p{q}"] or 0.0) * 1000, 3) for q in (50, 95, 99)}
    sections = [
        f"<h2>Outcomes ({data['calls']} calls)</h2>",
        _bars({k: float(v) for k, v in data["outcomes"].items()}),
        "<h2>Latency</h2>",
        _bars(latency, " ms"),
        "<h2>Cost by version</h2>",
        _bars({k: float(g["cost"]) for k, g in data["versions"].items()}),
    ]
    for tag, groups in data.get("by", {}).items():
        sections += [f"<h2>Cost by {html.escape(tag)}</h2>", _bars({k: float(g["cost"]) for k, g in groups.items()})]
    text = html.escape(table(path, data))
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body style='font-family:sans-serif'><h1>{title}</h1>{''.join(sections)}"
        f"<h2>Summary</h2><pre>{text}</pre></body></html>"
    )
