"""The command-line reference as markdown, read from the parser itself (the documentation site writes its
command-line page with :func:`reference` at build time, so the page and ``--help`` cannot disagree)."""
from __future__ import annotations

import argparse


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Each subcommand's name -> (its one-line help, its parser), in the order they were added. argparse has
    no public accessor for these: they live on the parser's one ``_SubParsersAction``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _names(action: argparse.Action) -> str:
    if action.option_strings:
        metavar = action.metavar or action.dest.upper()
        value = "" if action.nargs == 0 else " " + (" ".join(metavar) if isinstance(metavar, tuple) else metavar)
        return ", ".join(f"`{o}{value}`" for o in action.option_strings)
    return f"`{action.metavar or action.dest}`"


def _notes(action: argparse.Action, groups: dict[int, tuple[list[str], bool]]) -> str:
    notes = []
    if action.required or (not action.option_strings and action.nargs not in ("?", "*")):
        notes.append("required")
    if action.choices:
        notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if isinstance(action, argparse._AppendAction):
        notes.append("repeatable")
    if action.default not in (None, False, [], argparse.SUPPRESS) and action.nargs != 0:
        notes.append(f"default `{action.default}`")
    if id(action) in groups:
        others, required = groups[id(action)]
        notes.append("not with " + ", ".join(others) + ("; this or one of them is required" if required else ""))
    return "; ".join(notes)


def command(helptext: str, parser: argparse.ArgumentParser, level: int = 2) -> str:
    """One subcommand: its help, usage and a table of every argument (help, defaults, choices, exclusions)."""
    exclusive: dict[int, tuple[list[str], bool]] = {}
    for group in parser._mutually_exclusive_groups:
        for a in group._group_actions:
            others = [o for b in group._group_actions if b is not a for o in b.option_strings[:1]]
            exclusive[id(a)] = (others, group.required)
    rows = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    out = [f"{'#' * level} `{parser.prog}`", "", _cell(helptext), ""]
    if parser.description:
        out += [_cell(parser.description), ""]
    out += ["```", parser.format_usage().strip().removeprefix("usage: "), "```", "",
            "| argument | what it does | notes |", "|---|---|---|"]
    out += [f"| {_names(a)} | {_cell(a.help or '')} | {_notes(a, exclusive)} |" for a in rows]
    return "\n".join(out) + "\n"


def reference(parser: argparse.ArgumentParser, level: int = 2) -> str:
    """Every subcommand of ``parser`` as markdown (:func:`command`), in the order ``--help`` lists them."""
    return "\n".join(command(helptext, sub, level) for helptext, sub in subcommands(parser).values())
