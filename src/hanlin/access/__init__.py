"""Who may do what: the caller's access (scopes and knowledge bases), API keys, and the
browser-facing rules (allowed hosts and origins) that every surface shares."""
