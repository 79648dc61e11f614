"""Writes the reference pages at build time (mkdocs-gen-files), from the code itself: the settings schema, the
command-line parser, the tables' Arrow schemas and the model registry. Nothing here is committed as text, so
the pages cannot drift from the code."""
import inspect
import re

import mkdocs_gen_files

from raycurate import cli, cli_docs, schemas
from raycurate.analyzers import ANALYZERS
from raycurate.analyzers.face_embedders import VECTOR_FIELDS
from raycurate.models.registry import REGISTRY
from raycurate.settings import Settings
from raycurate.settings.docs import tables
from raycurate.stages import STAGES
from raycurate.store import people_schema as people, schema as store

FIELD_COMMENT = re.compile(r'pa\.field\(\s*"(\w+)".*#\s*(.+)$')


def html_safe(md: str) -> str:
    """``<`` outside code spans as an entity, so that ``OUT/<dir>`` is text, not an HTML tag."""
    return "\n".join("`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(line.split("`")))
                     for line in md.splitlines())


def comments(*objects) -> dict[str, str]:
    """A column's description: the comment on the line that declares it (``pa.field("x", ...)  # what x is``)."""
    found: dict[str, str] = {}
    for obj in objects:
        for line in inspect.getsource(obj).splitlines():
            if (m := FIELD_COMMENT.search(line)) and m.group(1) not in found:
                found[m.group(1)] = m.group(2).strip()
    return found


def analyser_note(name: str, col: str) -> str:
    """What an analyser's column holds: its declaring comment, or the bookkeeping every analyser adds."""
    return {f"{name}_model": "model id@version behind the analyser's columns on this row",
            f"{name}_error": "why the analyser failed on this row (null: it did not)",
            f"{name}_ms": "the analyser's time for this row, ms"}.get(col) or \
        comments(inspect.getmodule(ANALYZERS[name])).get(col, "")


def table(title: str, schema, groups: list[tuple[str, list, dict]], intro: str) -> str:
    """One table's columns, with the part of the code that writes each; fails the build when the groups no
    longer add up to the schema."""
    rows = [(f, writer, notes) for writer, fields, notes in groups for f in fields]
    assert [f.name for f, _, _ in rows] == schema.names, f"{title}: the writers no longer match the schema"
    out = [f"## `{title}`", "", intro, "", "| column | type | nullable | written by | what it holds |",
           "|---|---|---|---|---|"]
    for f, writer, notes in rows:
        text = notes.get(f.name, "").replace("|", "\\|")
        out.append(f"| `{f.name}` | `{f.type}` | {'yes' if f.nullable else 'no'} | {writer} | {html_safe(text)} |")
    return "\n".join(out) + "\n"


def analyser_groups(names) -> list[tuple[str, list, dict]]:
    return [(f"analyser `{n}`", ANALYZERS[n].fields(),
             {f.name: analyser_note(n, f.name) for f in ANALYZERS[n].fields()})
            for n in names]


def stage_groups() -> list[tuple[str, list, dict]]:
    """Each cascade stage's columns: its analysers' (named), then its score and whether a frame passed."""
    owner = {f.name: n for n, cls in ANALYZERS.items() for f in cls.fields()}
    groups = []
    for name, stage in STAGES.items():
        for f in stage.fields():
            if a := owner.get(f.name):
                groups.append((f"{name} (analyser `{a}`)", [f], {f.name: analyser_note(a, f.name)}))
            else:
                note = f"the {name} score" if f.name.endswith("_score") else f"the frame passed {name}'s threshold"
                groups.append((name, [f], {f.name: note}))
    return groups


def tables_page() -> str:
    core, ppl = comments(store), comments(people)
    parts = [
        table("images", schemas.images_schema(),
              [("store: the file", store.CORE_FIELDS, core),
               ("video path: a winning frame's lineage", store.LINEAGE_FIELDS, core),
               ("dedup", store.DEDUP_FIELDS, core), ("web UI: manual label", store.CURATION_FIELDS, core),
               ("people", people.PEOPLE_FIELDS, ppl), *analyser_groups(ANALYZERS)],
              "One row per content (photo or winning video frame), keyed by `id`, the sha256 of its bytes."),
        table("frames", schemas.frames_schema(),
              [("video path", store.FRAME_KEY_FIELDS, core), *stage_groups(), ("dedup", store.DEDUP_FIELDS, core)],
              "Every sampled video frame, with its Stage 1 and Stage 2 columns."),
        table("stage3", store.STAGE3_SCHEMA, [("Stage 3", list(store.STAGE3_SCHEMA), core)],
              "Stage 3's ensemble per frame that reached it: its parts, score, and whether it won."),
        table("videos", store.VIDEOS_SCHEMA, [("video path", list(store.VIDEOS_SCHEMA), core)],
              "One row per video or segment: decoder, frames claimed and decoded, cuts, errors."),
        table("videos_done", store.VIDEOS_DONE_SCHEMA, [("Stage 3", list(store.VIDEOS_DONE_SCHEMA), core)],
              "A video whose frames, Stage 3 rows and winners are stored: a later run skips it."),
        table("files", store.FILES_SCHEMA, [("listing", list(store.FILES_SCHEMA), core)],
              "Every name a content was listed under."),
        table("curated_runs", store.CURATED_SCHEMA, [("run", list(store.CURATED_SCHEMA), core)],
              "The runs whose stored rows a finished run has curated (duplicates grouped, faces indexed)."),
        table("faces", schemas.FACES_SCHEMA,
              [("people", people.FACE_FIELDS, ppl), ("analyser `face_features`", VECTOR_FIELDS, {}),
               ("people: identities", people.FACE_IDENTITY_FIELDS, ppl)],
              "One row per detected face, in photos and in sampled video frames."),
        table("identities", people.IDENTITIES_SCHEMA, [("people", list(people.IDENTITIES_SCHEMA), ppl)],
              "One row per identity of one embedding family."),
    ]
    return "# Tables and columns\n\nGenerated from the Arrow schemas the store writes (`raycurate/schemas.py`, " \
           "`raycurate/store/schema.py`, `raycurate/store/people_schema.py`); each column's note is the comment " \
           "on the line that declares it. What the analysers' columns mean, and which model fills them: " \
           "[Analysers and their columns](../concepts/analysers.md).\n\n" + "\n".join(parts)


def models_page() -> str:
    out = ["# Models", "", "Generated from the registry (`raycurate/models/registry.py`). `raycurate models list` "
           "shows each one's status on a machine; [Which model each analyser runs](../models.md) says which runs "
           "where.", ""]
    for spec in REGISTRY.values():
        out += [f"## `{spec.id}`", "", f"- analyser: `{spec.analyzer}`; library: {spec.library}",
                f"- licence: {spec.licence}", f"- source: {spec.source}", "",
                "| file | sha256 | bytes |", "|---|---|---|"]
        out += [f"| `{f.path}` | `{f.sha256 or 'recorded by models pull (lock file)'}` | {f.size or ''} |"
                for f in spec.files]
        out.append("")
    return html_safe("\n".join(out)) + "\n"


PAGES = {
    "reference/settings.md": "# Settings\n\nGenerated from the schema (`raycurate/settings/`); `raycurate config "
                             "--keys` prints the same tables. How to set them: [Configuration]"
                             "(../guides/configuration.md#settings).\n\n" + html_safe(tables(Settings, level=2)),
    "reference/cli.md": "# Command line\n\nGenerated from the parser (`raycurate/cli.py`); `raycurate COMMAND "
                        "--help` prints the same. Exit codes: 0 success, 2 bad usage, input, config or DB (one "
                        "line), 1 a failed run, 130 / 143 a run interrupted by Ctrl-C / SIGTERM.\n\n"
                        + cli_docs.reference(cli.parser()),
    "reference/tables.md": tables_page(),
    "reference/models.md": models_page(),
}
for path, text in PAGES.items():
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(text)
