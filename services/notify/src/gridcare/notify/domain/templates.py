"""The texts people read: one file per template and language, rendered in a sandbox.

A template is a folder ``templates/<template_id>/`` holding one file per language
(``zh.txt``, ``en.txt``, ``zh-TW.txt``): a language is added by adding files. Each file has
the blocks ``title`` (a chat title, an email subject), ``body`` (the full text) and, if the
body is too long for a text message, ``sms``. ``templates/_common/<language>.txt`` holds
the lines the renderer adds itself (an escalation's first line, the acknowledgement link,
"time unknown"). How to write one: ``docs/templates.md``.

Rendering is Jinja2's ``ImmutableSandboxedEnvironment`` (no access to internals, no
changing the parameters) with ``StrictUndefined`` and no autoescaping (plain text). A
missing or unusable parameter is :class:`BadParams`, never an empty or half-rendered text;
times are read on the community's clock (``zone``). The language used is the one asked,
else its base language (``zh-TW`` → ``zh``), else Chinese, else English, else any the
template has.

Alerts that need a person carry ``[<alert_id>]`` at the end of the title, the body's text
and the SMS (CONTRACT §5.1); an acknowledgement link follows the body (and the SMS when it
still fits). SMS texts are kept within ``max_sms_segments`` (GSM 03.38: :func:`sms_segments`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    UndefinedError,
    meta,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing

from gridcare.shared.localtime import zone as zone_info

#: The package's own templates.
FOLDER = Path(__file__).resolve().parent.parent / "templates"
#: Where the renderer's own lines are, per language (blocks ``escalation``, ``ack``,
#: ``unknown_time``).
COMMON = "_common"
COMMON_BLOCKS = ("escalation", "ack", "unknown_time")
#: Variables the renderer gives every template (so no producer sends them).
PROVIDED = frozenset({"language", "zone"})
#: The languages tried after the one asked and its base.
FALLBACK = ("zh", "en")

_TEMPLATE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class Rendered:
    template: str
    language: str  # the language actually used (after fallback)
    title: str  # short: a chat title / email subject
    body: str  # the full text (chat, email)
    sms: str  # its own block if the template has one, else the body; within the limit
    sms_segments: int = 1  # what the SMS costs (GSM 03.38)
    sms_cut: bool = False  # the SMS was cut to fit (ends in an ellipsis)


class TemplateProblem(Exception):
    """Any reason a message cannot be rendered; retrying never helps (a dead letter)."""


class UnknownTemplate(TemplateProblem, LookupError):
    """No such template (or it has no file at all)."""


class BadParams(TemplateProblem, ValueError):
    """A parameter is missing or cannot be used (``missing`` names each one)."""

    def __init__(self, template: str, missing: Iterable[str], why: str = "") -> None:
        self.template = template
        self.missing = sorted(set(missing))
        what = ", ".join(self.missing) or "(unnamed)"
        super().__init__(
            f"{template}: missing or unusable parameter(s) {what}" + (f": {why}" if why else "")
        )


class BrokenTemplate(TemplateProblem):
    """A template file that cannot be rendered: a syntax error, a block it lacks, or
    something the sandbox refuses (access to internals)."""


# -- SMS length (GSM 03.38) ---------------------------------------------------------------

#: The GSM 7-bit default alphabet (one septet each; ESC itself is not a character).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: an escape and the character, two septets each.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
#: Characters per message: GSM-7 (single, per part of a concatenated message), UCS-2.
GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in the GSM 7-bit alphabet (else it goes as UCS-2)."""
    return all(c in GSM_BASIC or c in GSM_EXTENSION for c in text)


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` takes (0 for nothing to send).

    GSM-7 when every character is in the default alphabet or its extension table (those
    count 2): 160 in one message, 153 per part when concatenated. Otherwise UCS-2 (any
    Chinese): 70 UTF-16 units, 67 per part (a character outside the BMP takes 2). A part
    never splits an escape pair or a surrogate pair.
    """
    if not text:
        return 0
    if is_gsm7(text):
        units = [2 if c in GSM_EXTENSION else 1 for c in text]
        single, part = GSM_SINGLE, GSM_PART
    else:
        units = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, part = UCS2_SINGLE, UCS2_PART
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for u in units:
        if used + u > part:
            parts, used = parts + 1, 0
        used += u
    return parts


def _word_char(c: str) -> bool:
    return c.isascii() and c.isalnum()


def cut_sms(text: str, max_segments: int, suffix: str = "") -> str:
    """``text`` cut so that ``text + suffix`` fits ``max_segments``: at a word boundary,
    ending in an ellipsis ("…" where the text is UCS-2 anyway; "..." in a GSM-7 text,
    which "…" would turn into UCS-2 and so cost more than half its room). ``suffix`` (an
    alert's ``[id]``) is kept whole."""
    if sms_segments(text + suffix) <= max_segments:
        return text + suffix
    dots = "..." if is_gsm7(text + suffix) else "…"

    def fits(n: int) -> bool:
        return sms_segments(text[:n].rstrip() + dots + suffix) <= max_segments

    lo, hi = 0, len(text)  # fits(lo); the longest n that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    n = lo
    if 0 < n < len(text) and _word_char(text[n - 1]) and _word_char(text[n]):
        space = max(text.rfind(" ", 0, n), text.rfind("\n", 0, n))
        if space > n // 2:
            n = space
    head = text[:n].rstrip().rstrip(",;:，；：、")
    return head + dots + suffix


# -- rendering ----------------------------------------------------------------------------


class _Missing(UndefinedError):
    """A name or a key a template needs that the parameters lack."""

    def __init__(self, name: Any, obj: Any, message: str) -> None:
        super().__init__(message)
        self.name, self.obj = name, obj


class _Unusable(Exception):
    """A parameter a filter cannot use (not a time, not a number)."""

    def __init__(self, value: Any, why: str) -> None:
        super().__init__(why)
        self.value = value


class _NullPrinted(Exception):
    """A template printed a null: it must guard the parameter with ``if``."""


class _Strict(StrictUndefined):
    """StrictUndefined that says which name is missing (and keeps the sandbox's
    SecurityError for unsafe attributes)."""

    __slots__ = ()

    def __init__(
        self, hint: str | None = None, obj: Any = missing, name: str | None = None, exc: Any = None
    ) -> None:
        if exc is None or exc is UndefinedError:
            exc = functools.partial(_Missing, name, obj)  # type: ignore[assignment]
        super().__init__(hint, obj, name, exc)


def _finalize(value: Any) -> Any:
    if value is None:
        raise _NullPrinted
    return value


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str) and len(value.strip()) > 10:
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Unusable(value, "not an RFC 3339 time") from None
    else:
        raise _Unusable(value, "not an RFC 3339 time")
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise _Unusable(value, "not a number")
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _Unusable(value, "not a number") from None


def _num(value: Any, digits: int | None = None) -> str:
    """A number as people write it: ``2``, ``0.25``; ``digits`` fixes the decimals."""
    x = _number(value)
    if digits is not None:
        return f"{x:.{digits}f}"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _chain(language: str, have: Iterable[str]) -> str | None:
    """The first of ``language``, its base, Chinese, English, then any, that ``have``
    holds (matched without regard to case or ``_``/``-``)."""
    by_key = {h.lower(): h for h in have}
    if not by_key:
        return None
    asked = (language or "").replace("_", "-").lower()
    for lang in (asked, asked.split("-")[0], *FALLBACK):
        if lang in by_key:
            return by_key[lang]
    return by_key[min(by_key)]


def _lines(text: str) -> str:
    """Trailing spaces off each line, no blank lines at either end, at most one blank
    line in a row."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list | tuple | dict) and not value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tag(text: str, alert_id: str) -> str:
    """``text`` ending in `` [<alert_id>]``, once."""
    tag = f"[{alert_id}]"
    if text.endswith(tag) and text.count(tag) == 1:
        return text
    text = re.sub(r"[ \t]*" + re.escape(tag), "", text).strip()
    return f"{text} {tag}"


class Templates:
    """Every template in ``folder`` (the package's by default), rendered on demand."""

    def __init__(self, folder: Path | None = None, *, max_sms_segments: int = 3) -> None:
        self.folder = Path(folder) if folder is not None else FOLDER
        self.max_sms_segments = max_sms_segments
        self._files: dict[str, list[str]] = {}
        for d in sorted(self.folder.iterdir()) if self.folder.is_dir() else ():
            if not d.is_dir() or not (_TEMPLATE_ID.match(d.name) or d.name == COMMON):
                continue
            langs = sorted(
                f.stem for f in d.glob("*.txt") if f.is_file() and _LANGUAGE.match(f.stem)
            )
            if langs:
                self._files[d.name] = langs
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(self.folder),
            undefined=_Strict,
            autoescape=False,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self.env.filters.update(
            local=self._local,
            local_seconds=self._local_seconds,
            hm=self._hm,
            num=_num,
            in_language=self._in_language,
        )
        self._required: dict[str, frozenset[str]] = {}

    # -- what there is

    def ids(self) -> list[str]:
        return sorted(t for t in self._files if t != COMMON)

    def languages(self, template_id: str) -> list[str]:
        if template_id == COMMON or template_id not in self._files:
            raise UnknownTemplate(template_id)
        return list(self._files[template_id])

    def required_params(self, template_id: str) -> set[str]:
        """The parameters the template's files use (in any language), less those the
        renderer provides (``language``, ``zone``) and Jinja's own globals."""
        if template_id not in self._required:
            names: set[str] = set()
            for lang in self.languages(template_id):
                name = f"{template_id}/{lang}.txt"
                try:
                    source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
                    names |= meta.find_undeclared_variables(self.env.parse(source, name))
                except TemplateError as e:
                    raise BrokenTemplate(f"{name}: {e}") from e
            self._required[template_id] = frozenset(names - PROVIDED - set(self.env.globals))
        return set(self._required[template_id])

    def check(self) -> None:
        """Compile every file and check its blocks (raises :class:`BrokenTemplate`): at
        start, so that a broken file is found before the first message needs it."""
        for template_id in [*self.ids(), COMMON]:
            if template_id == COMMON and COMMON not in self._files:
                raise BrokenTemplate(f"no {COMMON}/<language>.txt in {self.folder}")
            need = COMMON_BLOCKS if template_id == COMMON else ("title", "body")
            for lang in self._files[template_id]:
                blocks = self._template(template_id, lang).blocks
                lacking = [b for b in need if b not in blocks]
                if lacking:
                    raise BrokenTemplate(
                        f"{template_id}/{lang}.txt has no block {', '.join(lacking)}"
                    )
            if template_id != COMMON:
                self.required_params(template_id)

    # -- rendering

    def render(
        self,
        template_id: str,
        language: str,
        params: Mapping[str, Any],
        *,
        zone: str | None = None,
        alert_id: str | None = None,
        ack_url: str | None = None,
        escalation: Mapping[str, Any] | None = None,
    ) -> Rendered:
        lang = _chain(language, self.languages(template_id))
        assert lang is not None  # languages() has at least one
        missing = self.required_params(template_id) - set(params)
        if missing:
            raise BadParams(template_id, missing)
        try:
            zone_info(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadParams(template_id, ["zone"], f"unknown time zone {zone!r}") from None
        variables = {**params, "language": lang, "zone": zone}
        tmpl = self._template(template_id, lang)
        title = _one_line(self._block(tmpl, "title", variables, params, template_id))
        body = _lines(self._block(tmpl, "body", variables, params, template_id))
        for part, text in (("title", title), ("body", body)):
            if not text:
                empty = [k for k in self.required_params(template_id) if _blank(params[k])]
                raise BadParams(template_id, empty, f"the {part} ({lang}) is empty")
        sms = body
        if "sms" in tmpl.blocks:
            sms = _lines(self._block(tmpl, "sms", variables, params, template_id)) or body

        common = {"language": lang, "zone": zone, "ack_url": ack_url, "escalation": escalation}
        suffix = ""
        if alert_id:
            title, body, sms = _tag(title, alert_id), _tag(body, alert_id), _tag(sms, alert_id)
            suffix = f" [{alert_id}]"
        cut = sms_segments(sms) > self.max_sms_segments
        if cut:
            sms = cut_sms(sms[: len(sms) - len(suffix)], self.max_sms_segments, suffix)
        if ack_url:
            line = self._common(lang, "ack", common, template_id)
            body = f"{body}\n{line}"
            if not cut and sms_segments(f"{sms}\n{line}") <= self.max_sms_segments:
                sms = f"{sms}\n{line}"
        if escalation:
            line = self._common(lang, "escalation", common, template_id)
            body = f"{line}\n{body}"
            if not cut and sms_segments(f"{line}\n{sms}") <= self.max_sms_segments:
                sms = f"{line}\n{sms}"
        return Rendered(
            template=template_id,
            language=lang,
            title=title,
            body=body,
            sms=sms,
            sms_segments=sms_segments(sms),
            sms_cut=cut,
        )

    # -- inside

    def _template(self, template_id: str, lang: str) -> Template:
        name = f"{template_id}/{lang}.txt"
        try:
            return self.env.get_template(name)
        except TemplateError as e:
            raise BrokenTemplate(f"{name}: {e}") from e

    def _block(
        self,
        tmpl: Template,
        block: str,
        variables: dict[str, Any],
        params: Mapping[str, Any],
        template_id: str,
    ) -> str:
        render = tmpl.blocks.get(block)
        if render is None:
            raise BrokenTemplate(f"{tmpl.name} has no block {block!r}")
        try:
            return "".join(render(tmpl.new_context(variables)))
        except TemplateProblem:
            raise
        except _Missing as e:
            raise BadParams(template_id, [_where(e.name, e.obj, params)], str(e)) from None
        except _Unusable as e:
            raise BadParams(template_id, _named(e.value, params), str(e)) from None
        except _NullPrinted:
            nulls = [k for k in self.required_params(template_id) if params.get(k) is None]
            raise BadParams(template_id, nulls, "a null value where a text is needed") from None
        except SecurityError as e:
            raise BrokenTemplate(f"{tmpl.name}: refused by the sandbox: {e}") from e
        except TemplateError as e:
            raise BrokenTemplate(f"{tmpl.name}: {e}") from e
        except (TypeError, ValueError, ArithmeticError, LookupError) as e:
            raise BadParams(template_id, [], f"{type(e).__name__}: {e}") from None

    def _common(
        self, lang: str, block: str, variables: dict[str, Any], template_id: str = COMMON
    ) -> str:
        have = self._files.get(COMMON, [])
        use = _chain(lang, have)
        if use is None:
            raise BrokenTemplate(f"no {COMMON}/<language>.txt in {self.folder}")
        tmpl = self._template(COMMON, use)
        variables = {**variables, "language": use}
        text = _one_line(self._block(tmpl, block, variables, variables, template_id))
        if not text:
            raise BrokenTemplate(f"{COMMON}/{use}.txt: block {block!r} is empty")
        return text

    def _reads(self, ctx: Context, value: Any, fmt: str) -> str:
        if value is None or value == "":
            return self._common(ctx.get("language") or "zh", "unknown_time", {})
        try:
            local = _instant(value).astimezone(zone_info(ctx.get("zone")))
        except (OverflowError, ValueError) as e:
            raise _Unusable(value, str(e)) from None
        return local.strftime(fmt)

    @pass_context
    def _local(self, ctx: Context, value: Any) -> str:
        """``2026-03-12 07:31`` on the community's clock."""
        return self._reads(ctx, value, "%Y-%m-%d %H:%M")

    @pass_context
    def _local_seconds(self, ctx: Context, value: Any) -> str:
        return self._reads(ctx, value, "%Y-%m-%d %H:%M:%S")

    @pass_context
    def _hm(self, ctx: Context, value: Any) -> str:
        return self._reads(ctx, value, "%H:%M")

    @pass_context
    def _in_language(self, ctx: Context, words: Any, default: Any = None) -> Any:
        """``words`` (a mapping language → text) in the message's language or its base,
        else ``default``."""
        lang = str(ctx.get("language") or "")
        if isinstance(words, Mapping):
            for key in (lang, lang.split("-")[0]):
                if words.get(key):
                    return words[key]
        return default


def _named(value: Any, params: Mapping[str, Any]) -> list[str]:
    """The parameter(s) holding ``value`` (by identity, one level into lists)."""
    found = []
    for k, v in params.items():
        if v is value:
            found.append(k)
        elif isinstance(v, list | tuple):
            found += [f"{k}[{i}]" for i, x in enumerate(v) if x is value]
    return found


def _where(name: Any, obj: Any, params: Mapping[str, Any]) -> str:
    """``name``, or ``<param>.<name>`` / ``<param>[i].<name>`` for a key its value lacks."""
    if obj is missing:
        return str(name)
    owners = _named(obj, params)
    return f"{owners[0]}.{name}" if owners else str(name)


__all__ = [
    "FOLDER",
    "BadParams",
    "BrokenTemplate",
    "Rendered",
    "TemplateProblem",
    "Templates",
    "UnknownTemplate",
    "cut_sms",
    "is_gsm7",
    "sms_segments",
]
