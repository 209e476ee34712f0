"""PII detection: precision and recall per type on a labelled mixed zh/en set, detections on
clean text, throughput, and the latency masking adds to a request.

    python bench/pii.py generate bench/pii_mixed.jsonl        # the set (fixed seed)
    python bench/pii.py bench/pii_mixed.jsonl --out bench/out/pii.json
        [--recognizers phone id_card … | --person jieba_person]
        [--clean ../shared/eval/zh/drcd-dev/corpus.jsonl …]

The set puts valid values and lookalikes (wrong check digits, impossible dates, unallocated
prefixes, random order numbers, version strings) into realistic Chinese and English sentences.
A finding counts when its type and span equal a labelled one exactly. Types without a
recognizer in the run are reported as not covered.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hanlin.guard.checksums import (
    PROVINCES,
    USCC_CHARS,
    id_check_char,
    luhn_check_digit,
    uscc_check_char,
)
from hanlin.guard.detect import detector
from hanlin.guard.masking import Masker

# --- the labelled set ---------------------------------------------------------------------


def _d(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _region(rng: random.Random) -> str:
    prov = rng.choice(sorted(p for p in PROVINCES if p < 71))
    return f"{prov}{rng.randint(1, 20):02d}{rng.randint(1, 30):02d}"


def _id(rng: random.Random) -> str:
    body = f"{_region(rng)}{rng.randint(1950, 2010)}{rng.randint(1, 12):02d}"
    body += f"{rng.randint(1, 28):02d}{_d(rng, 3)}"
    n = body + id_check_char(body)
    r = rng.random()
    if r < 0.05:
        return f"{n[:6]} {n[6:14]} {n[14:]}"
    if r < 0.1:
        region = _region(rng)
        date = f"{rng.randint(50, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        return f"{region}{date}{_d(rng, 3)}"  # legacy 15 digits
    return n


def _bad_id(rng: random.Random) -> str:
    good = _id(rng).replace(" ", "")
    if len(good) == 15 or rng.random() < 0.5:  # a wrong check digit
        good = _id(rng).replace(" ", "")
        while len(good) != 18:
            good = _id(rng).replace(" ", "")
        wrong = rng.choice([c for c in "0123456789X" if c != good[-1]])
        return good[:-1] + wrong
    body = f"{_region(rng)}{rng.randint(1950, 2010)}{rng.choice(['13', '00', '02'])}"
    body += f"{rng.choice(['30', '31', '00'])}{_d(rng, 3)}"  # an impossible date
    return body + id_check_char(body)


_PHONE_PREFIXES = [
    "130",
    "133",
    "135",
    "138",
    "139",
    "150",
    "152",
    "158",
    "166",
    "177",
    "180",
    "186",
    "189",
    "199",
]


def _phone(rng: random.Random) -> str:
    n = rng.choice(_PHONE_PREFIXES) + _d(rng, 8)
    r = rng.random()
    if r < 0.15:
        return "+86 " + n
    if r < 0.25:
        return f"{n[:3]}-{n[3:7]}-{n[7:]}"
    if r < 0.35:
        return f"{n[:3]} {n[3:7]} {n[7:]}"
    if r < 0.4:
        return n.translate({ord(c): ord(c) + 0xFEE0 for c in string.digits})
    return n


def _bad_phone(rng: random.Random) -> str:
    return rng.choice(["120", "121", "106", "110", "140"]) + _d(rng, 8)


def _landline(rng: random.Random) -> str:
    area = rng.choice(["010", "021", "020", "022", "023", "0755", "0571", "028", "027", "0512"])
    num = str(rng.randint(2, 8)) + _d(rng, 6 if len(area) == 4 and rng.random() < 0.5 else 7)
    r = rng.random()
    if r < 0.2:
        return f"({area}){num}"
    if r < 0.3:
        return f"+86 {area[1:]} {num}"
    return f"{area}-{num}"


_BINS = ["622202", "621700", "623668", "622848", "621226", "436742", "518710", "625965", "622588"]


def _card(rng: random.Random) -> str:
    n = rng.choice(_BINS) + _d(rng, rng.choice([9, 12]))
    n += luhn_check_digit(n)
    if rng.random() < 0.3:
        return " ".join(n[i : i + 4] for i in range(0, len(n), 4))
    return n


def _bad_card(rng: random.Random) -> str:
    n = rng.choice(_BINS) + _d(rng, 9)
    return n + str((int(luhn_check_digit(n)) + rng.randint(1, 9)) % 10)


def _order(rng: random.Random) -> str:
    """A random order / tracking number of card length: unlabelled, so a Luhn-valid one with a
    card prefix counts against precision, as it would in real text."""
    return str(rng.randint(1, 9)) + _d(rng, rng.choice([15, 17, 18]))


def _uscc(rng: random.Random) -> str:
    body = rng.choice("9915N") + rng.choice("123") + _region(rng)
    body += "".join(rng.choice(USCC_CHARS) for _ in range(9))
    return body + uscc_check_char(body)


def _bad_uscc(rng: random.Random) -> str:
    good = _uscc(rng)
    return good[:-1] + rng.choice([c for c in USCC_CHARS if c != good[-1]])


def _passport(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "E" + rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + _d(rng, 7)
    return rng.choice("EG") + _d(rng, 8)


def _permit(rng: random.Random) -> str:
    return rng.choice(
        [
            "C" + _d(rng, 8),
            "C" + rng.choice("ABCDEFGH") + _d(rng, 7),
            "H" + _d(rng, 10),
            "M" + _d(rng, 8),
            "L" + _d(rng, 8),
        ]
    )


def _plate(rng: random.Random) -> str:
    prov = rng.choice("京津沪渝冀豫云辽黑湘皖鲁苏浙赣鄂桂甘晋陕吉闽贵粤川琼")
    city = rng.choice("ABCDEFGHJK")
    r = rng.random()
    if r < 0.2:
        return f"{prov}{city}{rng.choice('DF')}{_d(rng, 5)}"
    tail = rng.choice(string.ascii_uppercase.replace("I", "").replace("O", "")) + _d(rng, 4)
    if rng.random() < 0.5:
        tail = _d(rng, 5)
    return f"{prov}{city}{'·' if rng.random() < 0.3 else ''}{tail}"


_NAMES_EN = ["li.lei", "wang.fang", "zhang_wei", "chen.jing", "liu.yang88", "j.smith", "amy.wu"]
_DOMAINS = ["qq.com", "163.com", "gmail.com", "example.cn", "corp.com.cn", "outlook.com"]


def _email(rng: random.Random) -> str:
    return f"{rng.choice(_NAMES_EN)}{rng.randint(1, 999)}@{rng.choice(_DOMAINS)}"


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    groups = [format(rng.randint(0, 0xFFFF), "x") for _ in range(8)]
    if rng.random() < 0.5:
        return "2001:db8::" + ":".join(groups[:3])
    return ":".join(groups)


def _creds(rng: random.Random) -> str:
    user = rng.choice(["app", "admin", "svc_etl", "root"])
    password = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(12))
    return f"{user}:{password}"


def _secret(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    return rng.choice(
        [
            "sk-" + "".join(rng.choice(alnum) for _ in range(40)),
            "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            "ghp_" + "".join(rng.choice(alnum) for _ in range(36)),
            "LTAI" + "".join(rng.choice(alnum) for _ in range(20)),
        ]
    )


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
_GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "子涵",
    "浩然",
]


def _person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


GEN = {
    "ID_CARD": _id, "PHONE": _phone, "LANDLINE": _landline, "BANK_CARD": _card, "USCC": _uscc,
    "PASSPORT": _passport, "PERMIT": _permit, "PLATE": _plate, "EMAIL": _email, "IP": _ip,
    "URL_CREDENTIALS": _creds, "SECRET": _secret, "PERSON": _person,
}  # fmt: skip
NEG = {
    "BAD_ID": _bad_id, "BAD_PHONE": _bad_phone, "BAD_CARD": _bad_card, "BAD_USCC": _bad_uscc,
    "ORDER": _order, "VERSION": lambda r: ".".join(str(r.randint(0, 20)) for _ in range(5)),
}  # fmt: skip

TEMPLATES = [
    "客户{PERSON}的手机号是{PHONE}，身份证号码为{ID_CARD}。",
    "请将款项转入卡号{BANK_CARD}，开户人{PERSON}，备注订单号{ORDER}。",
    "公司统一社会信用代码：{USCC}，联系电话{LANDLINE}，传真{LANDLINE}。",
    "出差人员{PERSON}护照号{PASSPORT}，港澳通行证{PERMIT}。",
    "车牌号为{PLATE}的车辆违停，车主电话{PHONE}，请尽快挪车。",
    "如有疑问请发邮件至{EMAIL}或致电{LANDLINE}，工作日九点到五点。",
    "服务器{IP}的数据库连接串是postgresql://{URL_CREDENTIALS}@db.internal:5432/app。",
    "别把密钥{SECRET}提交到仓库，上次泄露的已经作废。",
    "核对发现身份证号{BAD_ID}校验位不对，请{PERSON}重新提供。",
    "流水号{BAD_CARD}的交易已退款，客服电话{PHONE}。",
    "物流单号{ORDER}，商品编码{BAD_USCC}，软件版本{VERSION}。",
    "旧系统里的号码{BAD_PHONE}已经停用，新号码是{PHONE}。",
    "{PERSON}于昨日办理了银行卡{BANK_CARD}的挂失，身份证{ID_CARD}。",
    "Please call Ms. Chen at {PHONE} or email {EMAIL} before Friday.",
    "Card number {BANK_CARD} was declined; order reference {ORDER}.",
    "Her passport {PASSPORT} expires next year; the permit {PERMIT} too.",
    "Connect with mysql://{URL_CREDENTIALS}@db.internal/prod from host {IP}.",
    "The leaked key {SECRET} was rotated on Monday.",
    "Tracking ID {BAD_CARD}, build {VERSION}, invoice {ORDER}.",
    "Registered company {USCC}, office line {LANDLINE}, vehicle {PLATE}.",
    "ID {BAD_ID} failed validation, but {ID_CARD} passed.",
]


def generate(path: Path, n: int = 420, seed: int = 20260101) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)] if i < len(TEMPLATES) else rng.choice(TEMPLATES)
        text, spans, pos = "", [], 0
        for literal, field, _, _ in string.Formatter().parse(template):
            text += literal
            if field is None:
                continue
            value = GEN[field](rng) if field in GEN else NEG[field](rng)
            if field in GEN:
                spans.append({"type": field, "start": len(text), "end": len(text) + len(value)})
            text += value
            pos += 1
        lang = "en" if template.isascii() or template[0].isascii() else "zh"
        rows.append({"text": text, "entities": spans, "lang": lang})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    total = sum(len(r["entities"]) for r in rows)
    print(f"{len(rows)} texts, {total} labelled spans → {path}")


# --- measuring ----------------------------------------------------------------------------


def measure(rows: list[dict[str, Any]], recognizers: tuple[str, ...]) -> dict[str, Any]:
    d = detector(recognizers)
    covered = d.kinds
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    for row in rows:
        gold = {(e["type"], e["start"], e["end"]) for e in row["entities"] if e["type"] in covered}
        got = {(e.kind, e.start, e.end) for e in d.find(row["text"])}
        for kind, *_ in gold & got:
            tp[kind] += 1
        for kind, s, e in got - gold:
            fp[kind] += 1
            errors.append({"fp": kind, "value": row["text"][s:e], "text": row["text"]})
        for kind, s, e in gold - got:
            fn[kind] += 1
            errors.append({"fn": kind, "value": row["text"][s:e], "text": row["text"]})
    per_type = {}
    for kind in sorted(covered | set(fp)):
        p_den, r_den = tp[kind] + fp[kind], tp[kind] + fn[kind]
        per_type[kind] = {
            "spans": r_den,
            "tp": tp[kind],
            "fp": fp[kind],
            "fn": fn[kind],
            "precision": round(tp[kind] / p_den, 4) if p_den else None,
            "recall": round(tp[kind] / r_den, 4) if r_den else None,
        }
    all_tp, all_fp, all_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    labelled = Counter(e["type"] for r in rows for e in r["entities"])
    return {
        "recognizers": [type(r).name for r in d.recognizers],
        "per_type": per_type,
        "micro": {
            "precision": round(all_tp / max(1, all_tp + all_fp), 4),
            "recall": round(all_tp / max(1, all_tp + all_fn), 4),
        },
        "not_covered": {k: v for k, v in labelled.items() if k not in covered},
        "errors": errors[:60],
    }


def throughput(rows: list[dict[str, Any]], recognizers: tuple[str, ...]) -> dict[str, float]:
    d = detector(recognizers)
    text = "\n".join(r["text"] for r in rows)
    while len(text.encode()) < 2_000_000:
        text += "\n" + text
    pieces = [text[i : i + 2000] for i in range(0, len(text), 2000)]
    mb = len(text.encode()) / 1e6
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for p in pieces:
            d.find(p)
        best = min(best, time.perf_counter() - t)
    return {"mb": round(mb, 2), "seconds": round(best, 3), "mb_per_s": round(mb / best, 2)}


def clean_text(paths: list[Path], recognizers: tuple[str, ...], limit_mb: float) -> dict[str, Any]:
    """Findings on corpora with no labelled personal data: each is a false positive or real
    data in the corpus (the samples say which)."""
    d = detector(recognizers)
    out: dict[str, Any] = {}
    for path in paths:
        chars, nbytes, seconds, found, samples = 0, 0, 0.0, Counter(), []
        with path.open(encoding="utf-8") as f:
            for line in f:
                text = json.loads(line).get("text", "")
                chars += len(text)
                nbytes += len(text.encode())
                t = time.perf_counter()
                entities = d.find(text)
                seconds += time.perf_counter() - t
                for e in entities:
                    found[e.kind] += 1
                    if len(samples) < 12:
                        samples.append(f"{e.kind}: {e.value}")
                if chars > limit_mb * 1e6:
                    break
        out[str(path)] = {
            "chars": chars,
            "findings": dict(found),
            "per_100k_chars": round(sum(found.values()) / chars * 1e5, 3) if chars else 0,
            "mb_per_s": round(nbytes / 1e6 / seconds, 2) if seconds else 0,
            "samples": samples,
        }
    return out


def latency(
    rows: list[dict[str, Any]], recognizers: tuple[str, ...], clean: list[Path]
) -> dict[str, Any]:
    """Mask a 2,000-character prompt with a fresh masker and restore an answer of the same
    size, as the gateway does per request: one made only of the set's sentences (dense: ~45
    values), and one of clean corpus text with three of the set's sentences in it."""
    dense = ""
    for r in rows:
        if len(dense) >= 2000:
            break
        dense += r["text"]
    out = {"dense": _latency(dense[:2000], recognizers)}
    if clean:
        with clean[0].open(encoding="utf-8") as f:
            prose = "".join(json.loads(next(f))["text"] for _ in range(12))
        typical = prose[:600] + rows[0]["text"] + prose[600:1200] + rows[1]["text"]
        typical += prose[1200:] + rows[2]["text"]
        out["typical"] = _latency(typical[-2000:], recognizers)
    return out


def _latency(prompt: str, recognizers: tuple[str, ...]) -> dict[str, float]:
    d = detector(recognizers)
    times = []
    for _ in range(500):
        t = time.perf_counter()
        m = Masker(d)
        m.reserve([prompt])
        masked = m.mask(prompt)
        m.restore(masked)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "prompt_chars": len(prompt),
        "entities": sum(m.counts.values()),
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(sorted(times)[int(len(times) * 0.95)], 3),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "generate":
        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("path", type=Path)
        p.add_argument("--n", type=int, default=420)
        p.add_argument("--seed", type=int, default=20260101)
        a = p.parse_args()
        generate(a.path, a.n, a.seed)
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("data", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--recognizers", nargs="*", default=[], help="default: the built-in defaults")
    p.add_argument("--person", help="add a person-name recognizer (e.g. jieba_person)")
    p.add_argument("--clean", nargs="*", type=Path, default=[], help="JSONL corpora with 'text'")
    p.add_argument("--clean-mb", type=float, default=3.0)
    a = p.parse_args()
    rows = [json.loads(line) for line in a.data.open(encoding="utf-8")]
    names = tuple(a.recognizers)
    if a.person:
        from hanlin.guard.recognizers import BUILTIN

        names = (*(names or tuple(c.name for c in BUILTIN)), a.person)
    result = {
        "data": str(a.data),
        "texts": len(rows),
        "spans": sum(len(r["entities"]) for r in rows),
        "quality": measure(rows, names),
        "throughput": throughput(rows, names),
        "latency_2k_prompt": latency(rows, names, a.clean),
        "clean": clean_text(a.clean, names, a.clean_mb),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    q = result["quality"]
    for kind, row in q["per_type"].items():
        print(f"{kind:16} spans {row['spans']:4}  P {row['precision']}  R {row['recall']}")
    print("micro", q["micro"], "not covered", q["not_covered"])
    print("throughput", result["throughput"], "latency", result["latency_2k_prompt"])
    for path, c in result["clean"].items():
        print(path, c["findings"], c["per_100k_chars"], "per 100k chars", c["mb_per_s"], "MB/s")


if __name__ == "__main__":
    main()
