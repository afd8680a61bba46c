"""The bundled template and its questions, read from copier.yml (their single source)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from scaffold import __version__, rules
from scaffold.errors import AnswerError, TemplateError

BUNDLED_NAME = "default"
# How the answers file names the bundled template: no path into a virtualenv,
# so the project still knows its origin after pip upgrades or on another machine.
BUNDLED_SOURCE = f"scaffold:{BUNDLED_NAME}"


def bundled_template() -> Path:
    """The folder of the template shipped with this scaffold."""
    here = Path(__file__).resolve().parent
    for candidate in (
        here / "templates" / BUNDLED_NAME,  # installed from a wheel
        here.parent / "templates" / BUNDLED_NAME,  # a source checkout
    ):
        if (candidate / "copier.yml").is_file():
            return candidate
    raise TemplateError(
        f"the bundled template is missing (looked in {here / 'templates'}); reinstall scaffold"
    )


def bundled_version() -> str:
    """The bundled template's version: the scaffold release that ships it."""
    return __version__


@dataclass(frozen=True)
class Question:
    """One question of copier.yml, as the CLI and the docs need it.

    Attributes:
        name: The answer's key.
        type: copier's type name (``str``, ``int``, ...).
        help: The prompt text.
        default: The default as written in copier.yml (may be Jinja).
        choices: ``(label, value)`` pairs; empty for free-form answers.
        computed: True for ``when: false`` values that are derived, never asked.
        when: copier's ``when`` for a question asked only after some answers
            (a Jinja expression); empty when always asked.
    """

    name: str
    type: str
    help: str
    default: Any
    choices: tuple[tuple[str, Any], ...] = field(default=())
    computed: bool = False
    multiselect: bool = False
    when: str = ""

    def asked(self, answers: dict[str, Any]) -> bool:
        """Whether copier asks this question after ``answers`` (its ``when``)."""
        if self.computed:
            return False
        if not self.when:
            return True
        import jinja2

        try:
            rendered = _environment().from_string(self.when).render(**answers)
        except jinja2.TemplateError:
            # Over values not among the answers (computed ones, a team
            # template's own filters): keep the answer, copier decides.
            return True
        return rendered.strip().lower() not in ("", "false", "no", "0", "none", "off")

    @property
    def values(self) -> list[Any]:
        """The choice values (not labels)."""
        return [value for _, value in self.choices]

    def cast(self, raw: Any) -> Any:
        """Turn a command-line string into this question's type, or raise AnswerError."""
        if self.multiselect:
            return self._cast_list(raw)
        if self.type == "int":
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            try:
                return int(str(raw).strip())
            except ValueError:
                raise AnswerError(
                    f"{self.name}={raw!r} is not a whole number; e.g. {self.name}=1"
                ) from None
        if self.type == "bool":
            text = str(raw).strip().lower()
            if text in ("true", "yes", "1", "y"):
                return True
            if text in ("false", "no", "0", "n"):
                return False
            raise AnswerError(f"{self.name}={raw!r}: use true or false")
        return str(raw)

    def _cast_list(self, raw: Any) -> list[str]:
        """``"a,b"``, ``"[a, b]"``, ``""``, ``"[]"`` or ``"none"``; a list in a file.

        A single value (an answers file from when the question took one, like
        ``logger: csv``) is a list of one; ``none`` is the empty list.
        """
        if isinstance(raw, list | tuple):
            items = [str(item).strip() for item in raw]
        elif raw is None:
            items = []
        else:
            text = str(raw).strip().removeprefix("[").removesuffix("]")
            items = [item.strip().strip("'\"") for item in text.split(",")]
        items = [item for item in items if item]
        if "none" in items and len(items) > 1:
            raise AnswerError(
                f"{self.name}={','.join(items)} asks for none and some at once; "
                f"give {self.name}=none for none, or drop none from the list"
            )
        if items == ["none"]:
            return []
        # Once each, in the order the question lists them: the same answer
        # however it was typed (unknown names last, for check() to name).
        order = {value: index for index, value in enumerate(map(str, self.values))}
        return sorted(dict.fromkeys(items), key=lambda item: order.get(item, len(order)))

    def check(self, value: Any) -> None:
        """Raise AnswerError if ``value`` is not one of the choices (or a bad name)."""
        if self.name == "project_name" and (problem := rules.project_name_problem(value)):
            raise AnswerError(problem)
        if self.name == "package_name" and (problem := rules.package_name_problem(value)):
            raise AnswerError(problem)
        if self.multiselect:
            for item in value:
                self._check_choice(item)
            return
        self._check_choice(value)

    def _check_choice(self, value: Any) -> None:
        if not self.choices or value in self.values:
            return
        if retired := rules.retired(self.name, value):
            raise AnswerError(retired)
        close = difflib.get_close_matches(str(value), [str(v) for v in self.values], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise AnswerError(
            f"{self.name}={value!r} is not a choice; choose one of "
            f"{', '.join(map(str, self.values))}{hint}"
        )


@cache
def _environment() -> Any:
    """Jinja for copier.yml's expressions: strict, with scaffold's rules extension."""
    import jinja2

    return jinja2.Environment(
        undefined=jinja2.StrictUndefined, extensions=["scaffold.jinja_ext.RulesExtension"]
    )


def with_defaults(template: Path, answers: dict[str, Any]) -> dict[str, Any]:
    """``answers`` plus the default of every question they don't record (not asked then).

    Defaults that are Jinja are rendered over the answers before them; one that
    can't be (``{{ _folder_name }}``: copier's own values) is left out.
    """
    import jinja2

    completed = dict(answers)
    for question in questions(template).values():
        if question.computed or question.name in completed:
            continue
        default = question.default
        if isinstance(default, str) and "{{" in default:
            try:
                default = _environment().from_string(default).render(**completed)
            except jinja2.TemplateError:
                continue
        completed[question.name] = default
    return completed


def questions(template: Path) -> dict[str, Question]:
    """The questions of ``template``'s copier.yml, in the order copier asks them."""
    return _questions(template.resolve())


@cache
def _questions(template: Path) -> dict[str, Question]:
    config_path = template / "copier.yml"
    try:
        config = yaml.safe_load(config_path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise TemplateError(f"can't read {config_path}: {error}") from None
    result = {}
    for name, spec in (config or {}).items():
        if name.startswith("_"):
            continue  # copier settings, not questions
        spec = spec if isinstance(spec, dict) else {"default": spec}
        result[name] = Question(
            name=name,
            type=str(spec.get("type", "str")),
            help=str(spec.get("help", "")).strip(),
            default=spec.get("default"),
            choices=_choices(spec.get("choices")),
            computed=str(spec.get("when", "true")).lower() == "false",
            multiselect=bool(spec.get("multiselect", False)),
            when=_condition(spec.get("when")),
        )
    return result


def _condition(when: Any) -> str:
    """A ``when`` that depends on answers (a Jinja expression), or ``""``."""
    return when if isinstance(when, str) and "{" in when else ""


def _choices(raw: Any) -> tuple[tuple[str, Any], ...]:
    if not raw:
        return ()
    if isinstance(raw, list):
        return tuple((str(value), value) for value in raw)
    pairs = []
    for label, value in raw.items():
        pairs.append((str(label), value["value"] if isinstance(value, dict) else value))
    return tuple(pairs)


def normalized(template: Path, answers: dict[str, Any]) -> dict[str, Any]:
    """``answers`` with each multiselect answer as a list.

    An answers file written when a question took one value (``logger: csv``)
    reads as that question asks now (``[csv]``; ``none`` as ``[]``).
    """
    known = questions(template)
    return {
        key: known[key].cast(value) if key in known and known[key].multiselect else value
        for key, value in answers.items()
    }


def parse_data(template: Path, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Check ``KEY=VALUE`` answers against the questions; cast them to their types.

    Raises:
        AnswerError: An unknown or computed key, or a value that is not a choice.
    """
    known = questions(template)
    data: dict[str, Any] = {}
    for key, raw in pairs:
        question = known.get(key)
        if question is None:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            names = ", ".join(q.name for q in known.values() if not q.computed)
            raise AnswerError(f"unknown question {key!r}{hint} (questions: {names})")
        if question.computed:
            raise AnswerError(f"{key!r} is derived from the other answers and can't be set")
        value = question.cast(raw)
        question.check(value)
        data[key] = value
    return data
