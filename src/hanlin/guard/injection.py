"""The injection scanner: instructions hidden in retrieved chunks, web pages and tool results
that try to steer the model, found by regular expressions in one pass per rule.

Each rule has an id (``INJ-IGNORE`` …) and a span; :func:`screen` applies a policy mode:
``flag`` keeps the text and reports the findings, ``strip`` removes the offending spans (a
sentence for an instruction, the element for hidden HTML, the line for a tool-call imitation),
``drop`` replaces the whole text with a notice. Nothing here is a classifier: a paraphrase the
patterns do not know gets through, which is why untrusted text is also delimited
(:mod:`hanlin.guard.untrusted`) and answers' links neutralised (:mod:`hanlin.guard.links`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from hanlin.guard.links import host_allowed, host_of
from hanlin.guard.untrusted import LOOKALIKE

Extent = Literal["match", "sentence", "line"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: str
    description: str
    pattern: re.Pattern[str]
    #: what ``strip`` removes: the match, up to the end of its sentence, or its line
    extent: Extent = "match"
    #: words every match starts with (lower case): the rule's pattern is then tried only where
    #: one of them is, found for all rules in one Aho-Corasick pass
    triggers: tuple[str, ...] = ()
    #: substrings (lower case) without one of which the rule cannot match: skipped cheaply
    needles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired on ``text[start:end]`` (the text itself is never recorded)."""

    rule: str
    category: str
    start: int
    end: int


_I = re.IGNORECASE
_M = re.MULTILINE
_S = re.DOTALL

_EN_IGNORE_VERBS = "ignore disregard forget skip override bypass neglect abandon drop"
_ZH_IGNORE_VERBS = (
    "忽略 忽视 忽視 无视 無視 不要理会 不要理會 不要管 别管 別管 忘记 忘記 "
    "忘掉 跳过 跳過 抛开 拋開 放弃 放棄 覆盖 覆蓋 绕过 繞過 不再遵守 停止遵守"
)
_LEAK_VERBS = (
    "reveal print show repeat output display tell leak dump disclose write "
    "输出 打印 显示 顯示 告诉我 告訴我 重复 重複 泄露 洩露 透露 给出 給出 展示"
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# en: "ignore (all) previous instructions", "disregard the rules above", "forget everything above"
_EN_IGNORE = (
    r"\b(?:ignore|disregard|forget|skip|override|bypass|neglect|abandon|drop)\s+"
    r"(?:(?:all|any|the|your|my|these|those|every|of|everything)\s+){0,3}"
    r"(?:previous|prior|above|earlier|preceding|foregoing|former|original|initial|system|"
    r"existing|given|developer|safety|all|your)\s+"
    r"(?:\w+\s+)?(?:instructions?|rules?|directions?|directives?|prompts?|guidelines?|"
    r"commands?|context|orders?|constraints?|restrictions?|polic(?:y|ies)|messages?|guardrails?)\b"
    r"|\bforget\s+(?:everything|all)\s+(?:you\s+(?:were|have\s+been)\s+told|above|before)\b"
    r"|\bdo\s+not\s+follow\s+(?:the|your|any)\s+(?:previous|prior|system|original)\s+"
    r"(?:instructions?|rules?)\b"
)
# zh (simplified and traditional): 忽略之前的指令, 无视以上规则, 忘记你的设定 …
_ZH_IGNORE = (
    r"(?:忽略|忽视|忽視|无视|無視|不要理会|不要理會|不要管|别管|別管|忘记|忘記|忘掉|跳过|跳過|"
    r"抛开|拋開|放弃|放棄|覆盖|覆蓋|绕过|繞過|不再遵守|停止遵守)(?:掉)?(?:你|您)?"
    r"(?:之前|以前|先前|此前|上面|上述|以上|前面|原来|原來|原有|原先|所有|全部|一切|系统|系統|"
    r"已有|你的|您的|的)(?:的|所有的|全部的|给你的|給你的)?(?:所有|全部|一切)?(?:的)?"
    r"(?:指令|指示|规则|規則|说明|說明|提示词|提示詞|提示|要求|设定|設定|命令|约束|約束|限制|安全策略)"
)
_EN_ROLE = (
    r"\byou\s+are\s+now\b|\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|shall|should)\b"
    r"|\bpretend\s+(?:to\s+be|you\s+are)\b|\bact\s+as\s+(?:an?\s+)?(?:unrestricted|uncensored|"
    r"unfiltered|jailbroken|evil|DAN)\b|\b(?:developer|god|jailbreak|DAN|unrestricted)\s+mode\b"
    r"|\bnew\s+(?:system\s+)?instructions?\s*:|\byour\s+new\s+(?:role|task|instructions?|goal)\s+"
    r"(?:is|are)\b|\bthe\s+(?:assistant|AI|model)\s+must\s+now\b"
    r"|(?<![^\n])system\s*(?:prompt|message)?\s*[:：]\s*(?:you\b|your\b|ignore\b|from\s+now|请|你|忽略)"
)
_ZH_ROLE = (
    r"你现在是|你現在是|现在你是|現在你是|从现在(?:开始|起)[，,]?\s*你|從現在(?:開始|起)[，,]?\s*你|"
    r"假装你是|假裝你是|扮演一个(?:没有|不受)|扮演一個(?:沒有|不受)|你的新(?:角色|任务|任務|指令)|"
    r"开发者模式|開發者模式|越狱模式|越獄模式|新(?:的)?指令[:：]|新(?:的)?系统指令|新(?:的)?系統指令"
)
_LEAK = (
    r"\b(?:reveal|print|show|repeat|output|display|tell\s+me|leak|dump|disclose|write\s+out)\b"
    r"[^.\n]{0,40}\b(?:system\s+prompt|initial\s+(?:prompt|instructions)|hidden\s+(?:prompt|"
    r"instructions)|your\s+(?:instructions|prompt|rules))\b"
    r"|(?:输出|打印|显示|顯示|告诉我|告訴我|重复|重複|泄露|洩露|透露|给出|給出|展示)[^。\n]{0,20}"
    r"(?:系统提示|系統提示|系统指令|系統指令|初始指令|隐藏指令|隱藏指令|你的指令|提示词|提示詞)"
)
_CHAT_TEMPLATE = (
    r"<\|(?:im_start|im_end|system|endoftext|start_header_id|end_header_id|eot_id)\|>"
    r"|\[/?INST\]|<<\s*/?SYS\s*>>|<(?:start|end)_of_turn>|^\s*#{2,}\s*(?:system|instruction)s?\s*:?\s*$"
)
_TOOL_TAG = (
    r"</?(?:tool_call|tool_calls|function_call|function_calls|tool_use|tool_result|tool_response|"
    r"invoke|function_results)\b[^>\n]*>|<\|(?:tool_call|python_tag|plugin)\|>|\[TOOL_CALLS\]"
)
_TOOL_JSON = (
    r"\{\s*\"(?:name|function|tool|tool_name)\"\s*:\s*\"[\w.-]+\"\s*,\s*"
    r"\"(?:arguments|parameters|args|input)\"\s*:|\"(?:tool_calls|function_call)\"\s*:"
)
_REACT = r"^[ \t>*]*(?:Observation|Action\s+Input|Final\s+Answer)\s*:"
_CSS_HIDDEN = (
    r"<(?P<tag>[a-z][a-z0-9]*)\b[^>]*?(?:\bhidden\b(?!\s*=\s*[\"']?false)|style\s*=\s*[\"'][^\"']*"
    r"(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?"
    r"\s*(?:;|[\"'])|opacity\s*:\s*0(?:\.0+)?\s*(?:;|[\"'])|(?<![-\w])color\s*:\s*(?:#fff(?:fff)?\b|"
    r"white\b|rgba?\(\s*255\s*,\s*255\s*,\s*255)|(?:height|width)\s*:\s*0(?:px)?\s*(?:;|[\"'])))"
    r"[^>]*>.*?</(?P=tag)\s*>"
)

RULES: tuple[Rule, ...] = (
    Rule(
        "INJ-IGNORE",
        "instruction_override",
        "tells the model to ignore its instructions",
        re.compile(f"{_EN_IGNORE}|{_ZH_IGNORE}", _I),
        "sentence",
        triggers=_words(_EN_IGNORE_VERBS + " do " + _ZH_IGNORE_VERBS),
    ),
    Rule(
        "INJ-ROLE",
        "role_override",
        "gives the model a new role or mode",
        re.compile(f"{_EN_ROLE}|{_ZH_ROLE}", _I),
        "sentence",
        triggers=_words(
            "you from pretend act developer god jailbreak dan unrestricted new your the system "
            "你现在是 你現在是 现在你是 現在你是 从现在 從現在 假装你是 假裝你是 扮演一个 扮演一個 "
            "你的新 开发者模式 開發者模式 越狱模式 越獄模式 新指令 新的 新系统指令 新系統指令"
        ),
    ),
    Rule(
        "INJ-PROMPT-LEAK",
        "prompt_leak",
        "asks for the system prompt",
        re.compile(_LEAK, _I),
        "sentence",
        triggers=_words(_LEAK_VERBS),
    ),
    Rule(
        "INJ-CHAT-TEMPLATE",
        "role_override",
        "chat-template markup (role tokens)",
        re.compile(_CHAT_TEMPLATE, _I | _M),
        "line",
        needles=("<|", "inst]", "<<", "_of_turn>", "##"),
    ),
    Rule(
        "INJ-DELIMITER",
        "delimiter",
        "looks like the untrusted-block delimiter",
        LOOKALIKE,
        "match",
    ),
    Rule(
        "INJ-TOOL-TAG",
        "tool_imitation",
        "tool-call markup",
        re.compile(_TOOL_TAG, _I),
        "line",
        needles=("<", "[tool_calls]"),
    ),
    Rule(
        "INJ-TOOL-JSON",
        "tool_imitation",
        "a JSON function call",
        re.compile(_TOOL_JSON, _I),
        "line",
        needles=('"',),
    ),
    Rule(
        "INJ-TOOL-REACT",
        "tool_imitation",
        "ReAct Observation / Action Input lines",
        re.compile(_REACT, _M),
        "line",
        needles=("observation", "action", "final answer"),
    ),
    Rule(
        "INJ-HIDDEN-COMMENT",
        "hidden_text",
        "an HTML comment",
        re.compile(r"<!--.*?(?:-->|$)", _S),
        needles=("<!--",),
    ),
    Rule(
        "INJ-HIDDEN-CSS",
        "hidden_text",
        "HTML hidden by CSS (display:none, white text, zero size)",
        re.compile(_CSS_HIDDEN, _I | _S),
        needles=("<",),
    ),
    Rule(
        "INJ-HIDDEN-ZW",
        "hidden_text",
        "zero-width characters",
        re.compile(r"[\u200b\u2060-\u2064\u180e]+|(?<=.)\ufeff|[\u200c\u200d\u200e\u200f]{2,}", _S),
        needles=tuple("\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\u180e\ufeff"),
    ),
    Rule(
        "INJ-HIDDEN-TAGS",
        "hidden_text",
        "Unicode tag characters (invisible ASCII)",
        re.compile("[\U000e0000-\U000e007f]+"),
    ),
    Rule(
        "INJ-HIDDEN-BIDI",
        "hidden_text",
        "bidirectional override characters",
        re.compile(r"[\u202d\u202e]"),
        needles=("\u202d", "\u202e"),
    ),
)

_MD_URL = re.compile(r"(!?)\[[^\]\n]*\]\(\s*<?(https?://[^)\s>]+)", _I)
_IMG_TAG = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"']?(https?://[^\"'\s>]+)", _I)
# a query that carries something filled in: {…}, <…>, $VAR, [DATA], or their %-encodings
_PLACEHOLDER = re.compile(r"[{}<>$\[\]]|%7b|%7d|%3c|%3e|%24|%5b", _I)
_SENTENCE_END = re.compile(r"[!?。！？\n]|\.(?=\s|$)")

#: every rule id, with its category and what it finds
RULE_IDS: dict[str, tuple[str, str]] = {r.id: (r.category, r.description) for r in RULES} | {
    "INJ-EXFIL-IMAGE": ("exfiltration", "an image loaded from a host not allowed"),
    "INJ-EXFIL-LINK": ("exfiltration", "a link to a host not allowed with data in its query"),
}


def _exfiltration(text: str, allowed: Collection[str]) -> list[Finding]:
    out: list[Finding] = []
    if "://" not in text:
        return out
    for m in _MD_URL.finditer(text):
        url = m.group(2)
        if host_allowed(host_of(url), allowed):
            continue
        end = text.find(")", m.end())
        end = m.end() if end == -1 else end + 1
        if m.group(1):
            out.append(Finding("INJ-EXFIL-IMAGE", "exfiltration", m.start(), end))
        elif "?" in url and _PLACEHOLDER.search(url.split("?", 1)[1]):
            out.append(Finding("INJ-EXFIL-LINK", "exfiltration", m.start(), end))
    for m in _IMG_TAG.finditer(text):
        if not host_allowed(host_of(m.group(1)), allowed):
            end = text.find(">", m.end())
            end = m.end() if end == -1 else end + 1
            out.append(Finding("INJ-EXFIL-IMAGE", "exfiltration", m.start(), end))
    return out


@functools.cache
def _automaton() -> Any:
    """Every rule's trigger words in one Aho-Corasick automaton: word → indexes of rules."""
    import ahocorasick

    words: dict[str, list[int]] = {}
    for i, rule in enumerate(RULES):
        for word in rule.triggers:
            words.setdefault(word, []).append(i)
    automaton = ahocorasick.Automaton()
    for word, rules in words.items():
        automaton.add_word(word, (len(word), tuple(rules)))
    automaton.make_automaton()
    return automaton


def _matches(rule: Rule, text: str, starts: list[int] | None) -> Iterator[re.Match[str]]:
    if starts is None:
        yield from rule.pattern.finditer(text)
        return
    last = -1
    for start in starts:
        if start < last:
            continue
        m = rule.pattern.match(text, start)
        if m is not None:
            last = m.end()
            yield m


def _trigger_starts(text: str) -> dict[int, list[int]] | None:
    """Where each triggered rule may match (start offsets, sorted); None: scan everything
    (lower-casing changed the text's length, so offsets would not carry over)."""
    lowered = text.lower()
    if len(lowered) != len(text):
        return None
    starts: dict[int, list[int]] = {}
    for end, (length, rules) in _automaton().iter(lowered):
        start = end - length + 1
        if length > 1 and lowered[start].isascii() and start and lowered[start - 1].isalnum():
            continue  # inside a word
        for i in rules:
            starts.setdefault(i, []).append(start)
    for found in starts.values():
        found.sort()
    return starts


def _cannot_match(rule: Rule, lowered: str, tags: bool) -> bool:
    """Whether a cheap check rules ``rule`` out (a needle missing, no tag character)."""
    if rule.id == "INJ-HIDDEN-TAGS":
        return not tags
    return bool(rule.needles) and not any(n in lowered for n in rule.needles)


def scan(text: str, allowed_hosts: Collection[str] = ()) -> list[Finding]:
    """Every finding in ``text``, by position (spans may overlap)."""
    found: list[Finding] = []
    if not text:
        return found
    triggered = _trigger_starts(text)
    lowered = text.lower()
    tags = max(text) >= "\U000e0000"
    for i, rule in enumerate(RULES):
        starts: list[int] | None = None
        if rule.triggers and triggered is not None:
            starts = triggered.get(i)
            if not starts:
                continue
        elif _cannot_match(rule, lowered, tags):
            continue
        for m in _matches(rule, text, starts):
            if rule.id == "INJ-HIDDEN-TAGS" and m.start() and text[m.start() - 1] == "\U0001f3f4":
                continue  # a subdivision flag (🏴 + tag letters)
            start, end = m.span()
            if rule.extent == "sentence":
                stop = _SENTENCE_END.search(text, end)
                end = stop.end() if stop else len(text)
            elif rule.extent == "line":
                start = text.rfind("\n", 0, start) + 1
                newline = text.find("\n", end)
                end = len(text) if newline == -1 else newline
            found.append(Finding(rule.id, rule.category, start, end))
    found += _exfiltration(text, allowed_hosts)
    found.sort(key=lambda f: (f.start, -f.end))
    return found


def strip(text: str, findings: list[Finding]) -> str:
    """``text`` without the findings' spans (overlaps merged)."""
    parts: list[str] = []
    last = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.end <= last:
            continue
        parts.append(text[last : max(last, f.start)])
        last = f.end
    parts.append(text[last:])
    return "".join(parts)


@dataclass(slots=True)
class Screened:
    """What :func:`screen` made of one text."""

    text: str
    findings: list[Finding] = field(default_factory=list)
    #: the policy's mode; ``dropped``: the text was replaced by a notice
    mode: str = "flag"
    dropped: bool = False

    @property
    def rules(self) -> list[str]:
        """The ids of the rules that fired, each once, in order."""
        return list(dict.fromkeys(f.rule for f in self.findings))


def notice(rules: list[str]) -> str:
    return f"[removed by the guard: this content held instructions ({', '.join(rules)})]"


def screen(text: str, mode: str, allowed_hosts: Collection[str] = ()) -> Screened:
    """Scan ``text`` and apply ``mode`` (``off`` | ``flag`` | ``strip`` | ``drop``)."""
    if mode == "off" or not text:
        return Screened(text, mode=mode)
    findings = scan(text, allowed_hosts)
    if not findings or mode == "flag":
        return Screened(text, findings, mode)
    if mode == "drop":
        rules = list(dict.fromkeys(f.rule for f in findings))
        return Screened(notice(rules), findings, mode, dropped=True)
    return Screened(strip(text, findings), findings, mode)
