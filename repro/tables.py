"""Tables as text: markdown for the report and the experiments' own tables, fixed width for the terminal."""
from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 seed', '2 seeds'; ``many`` where the plural is not word + 's'."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def md_cell(value) -> str:
    """Text that cannot break a markdown table row or list item: no '|', no line break."""
    return str(value).replace("|", "\\|").replace("\n", " ")


# "<" starts every HTML tag, "[" every link and image, "`" every code span: escaped, none can form
_ESCAPES = str.maketrans({"<": "&lt;", "[": "\\[", "]": "\\]", "`": "\\`"})


def md_text(value, keep_lines: bool = False) -> str:
    """Text from a results file as inert Markdown: no HTML tag, link, image or code span can form from
    it (results files are shared, so untrusted), and no line break unless ``keep_lines`` (a table's
    own rows)."""
    text = str(value).translate(_ESCAPES)
    return text if keep_lines else text.replace("\n", " ")


def md_code(value) -> str:
    """Text from a results file as an inline code span, which Markdown renders literally."""
    return "`" + str(value).replace("`", "'").replace("\n", " ").replace("|", "\\|") + "`"


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(map(md_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(rows: list[tuple]) -> str:
    """Columns padded to their widest cell, the first row a header underlined with dashes."""
    rows = [tuple(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_stats(s: dict | None, digits: int = 3) -> str:
    """An aggregate (repro.experiment.stats) as mean ± sd (n); "diverged" where no seed has a value."""
    if not s or s["n"] == 0:
        return "diverged" if s is not None else "-"
    if 0 < abs(s["mean"]) < 10 ** (1 - digits):  # under two significant digits (gradient ratios): exponents
        return f"{s['mean']:.2e} ± {s['std']:.1e} (n={s['n']})"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} (n={s['n']})"


def format_measured(aggregate: dict, metric: str) -> str:
    """A variant's metric as printed in tables: mean ± sd (n), with the count of diverged seeds."""
    measured = format_stats(aggregate[metric], 4 if "loss" in metric else 3)
    if aggregate.get("diverged"):
        measured += f", {aggregate['diverged']} diverged"
    return measured
