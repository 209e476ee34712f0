"""The shapes of provider API keys, tokens and private keys.

One table serves two readers: the tracing layer masks these shapes in everything a span records
(:func:`hanlin.tracing.records.mask`), and the PII guard reports them as ``SECRET`` entities so
they are masked before a prompt leaves for a remote model.
"""

from __future__ import annotations

import re

#: one alternative per provider shape; a match is the secret itself (never the word before it)
KEY_SHAPE_PATTERNS: tuple[str, ...] = (
    r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic, DeepSeek, Moonshot, Qwen …
    r"hk-[A-Za-z0-9_\-]{20,}",  # Hanlin API keys
    r"(?:sk|rk)_live_[A-Za-z0-9]{16,}",  # Stripe secret and restricted keys
    r"AKIA[0-9A-Z]{16}",  # AWS access key ids
    r"LTAI[A-Za-z0-9]{12,24}",  # Alibaba Cloud AccessKey ids
    r"AKID[A-Za-z0-9]{32}",  # Tencent Cloud SecretIds
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API keys
    r"ya29\.[0-9A-Za-z_\-]{20,}",  # Google OAuth access tokens
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{40,}",  # GitHub fine-grained tokens
    r"glpat-[A-Za-z0-9_\-]{20,}",  # GitLab personal access tokens
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face tokens
    r"npm_[A-Za-z0-9]{36}",  # npm tokens
    r"xox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"gsk_[A-Za-z0-9]{40,}",  # Groq keys
    r"xai-[A-Za-z0-9]{40,}",  # xAI keys
    r"[0-9a-f]{32}\.[A-Za-z0-9]{16}",  # Zhipu (GLM) keys: id.secret
    r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JSON Web Tokens
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----",
    r"(?<=[Bb]earer )[A-Za-z0-9._\-+/=]{16,}",  # whatever follows "Bearer "
)

#: every shape in one pattern (the tracing mask and the ``secrets`` recognizer use it). A key
#: starts where a word does: the look-around skips every other position before the dozen
#: alternatives are tried (6x faster on Chinese text)
KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9_])(?=[A-Za-z0-9\-])(?:" + "|".join(KEY_SHAPE_PATTERNS[:-1]) + ")"
    "|" + KEY_SHAPE_PATTERNS[-1]
)
