"""Response shapes of the web search APIs, for a local server to replay in tests.

Each body keeps the fields and quirks the real API sends: Tavily's ``detail.error`` errors and
float ``response_time``; Brave's ``<strong>`` highlights in ``description``, ``page_age``
without a zone and its 422 ``SUBSCRIPTION_TOKEN_INVALID`` for a bad token; Exa's
``highlights`` with ``highlightScores`` and ``costDollars``; Bocha's Bing-like ``webPages``
wrapped in ``{"code", "log_id", "msg", "data"}`` with Chinese results and Beijing time marked
``Z``; Bing v7's seven-digit fractional seconds; SearXNG's merged ``engines`` / ``positions``
and ``unresponsive_engines``. Texts are shortened; structure is as documented and received.
"""

from __future__ import annotations

import copy
from typing import Any

QUERY = "what is retrieval-augmented generation"
QUERY_ZH = "阿里巴巴2024年的esg报告"

_TAVILY: dict[str, Any] = {
    "query": QUERY,
    "follow_up_questions": None,
    "answer": None,
    "images": [],
    "results": [
        {
            "url": "https://en.wikipedia.org/wiki/Retrieval-augmented_generation",
            "title": "Retrieval-augmented generation - Wikipedia",
            "content": "Retrieval-augmented generation (RAG) is a technique that enables large "
            "language models (LLMs) to retrieve and incorporate new information. With RAG, "
            "LLMs do not respond to user queries until they refer to a specified set of "
            "documents.",
            "score": 0.8848,
            "raw_content": None,
        },
        {
            "url": "https://aws.amazon.com/what-is/retrieval-augmented-generation/",
            "title": "What is RAG? - Retrieval-Augmented Generation AI Explained - AWS",
            "content": "Retrieval-Augmented Generation (RAG) is the process of optimizing the "
            "output of a large language model, so it references an authoritative knowledge "
            "base outside of its training data sources before generating a response.",
            "score": 0.8443,
            "raw_content": None,
        },
        {
            "url": "https://research.ibm.com/blog/retrieval-augmented-generation-RAG",
            "title": "What is retrieval-augmented generation? - IBM Research",
            "content": "RAG is an AI framework for retrieving facts from an external knowledge "
            "base to ground large language models (LLMs) on the most accurate, up-to-date "
            "information.",
            "score": 0.7869,
            "raw_content": None,
        },
    ],
    "response_time": 1.09,
    "request_id": "123e4567-e89b-12d3-a456-426614174111",
}

_BRAVE_RESULT_META = {
    "is_source_local": False,
    "is_source_both": False,
    "language": "en",
    "family_friendly": True,
    "type": "search_result",
    "subtype": "generic",
    "is_live": False,
}

_BRAVE: dict[str, Any] = {
    "query": {
        "original": QUERY,
        "show_strict_warning": False,
        "is_navigational": False,
        "is_news_breaking": False,
        "spellcheck_off": True,
        "country": "us",
        "bad_results": False,
        "should_fallback": False,
        "postal_code": "",
        "city": "",
        "header_country": "",
        "more_results_available": True,
        "state": "",
    },
    "mixed": {
        "type": "mixed",
        "main": [{"type": "web", "index": i, "all": False} for i in range(3)],
        "top": [],
        "side": [],
    },
    "type": "search",
    "web": {
        "type": "search",
        "results": [
            {
                "title": "Retrieval-augmented generation - Wikipedia",
                "url": "https://en.wikipedia.org/wiki/Retrieval-augmented_generation",
                "description": "<strong>Retrieval-augmented generation</strong> "
                "(<strong>RAG</strong>) is a technique that enables large language models "
                "(LLMs) to retrieve and incorporate new information.",
                "page_age": "2025-02-27T09:14:20",
                "age": "February 27, 2025",
                "profile": {
                    "name": "Wikipedia",
                    "url": "https://en.wikipedia.org/wiki/Retrieval-augmented_generation",
                    "long_name": "en.wikipedia.org",
                    "img": "https://imgs.search.brave.com/m6XxME4ek8DGIUcEPCqjRoDjf2e54EwL9pQzyzogLYk/rs:fit:32:32:1:0/g:ce/aHR0cDovL2Zhdmlj/b25zLnNlYXJjaC5i/cmF2ZS5jb20vaWNv/bnMvNjQwNGZhZWY0/ZTQ1YWUzYzQ3MDUw/MmMzMGY3NTQ0ZjNj/NDUwMDk5ZTI3MWRk/NWYyNTM4N2UwOTE0/NTI3ZDQzNy9lbi53/aWtpcGVkaWEub3Jn/Lw",
                },
                "meta_url": {
                    "scheme": "https",
                    "netloc": "en.wikipedia.org",
                    "hostname": "en.wikipedia.org",
                    "favicon": "https://imgs.search.brave.com/m6XxME4ek8DGIUcEPCqjRoDjf2e54EwL9pQzyzogLYk/rs:fit:32:32:1:0/g:ce/aHR0cDovL2Zhdmlj",
                    "path": "› wiki  › Retrieval-augmented_generation",
                },
                "extra_snippets": [
                    "RAG improves large language models by incorporating information retrieval "
                    "before generating responses."
                ],
                **_BRAVE_RESULT_META,
            },
            {
                "title": "What is RAG? - Retrieval-Augmented Generation AI Explained - AWS",
                "url": "https://aws.amazon.com/what-is/retrieval-augmented-generation/",
                "description": "<strong>Retrieval-Augmented Generation</strong> "
                "(<strong>RAG</strong>) is the process of optimizing the output of a large "
                "language model, so it references an authoritative knowledge base &amp; "
                "data sources.",
                "profile": {
                    "name": "Amazon Web Services",
                    "url": "https://aws.amazon.com/what-is/retrieval-augmented-generation/",
                    "long_name": "aws.amazon.com",
                    "img": "https://imgs.search.brave.com/aws-favicon",
                },
                "meta_url": {
                    "scheme": "https",
                    "netloc": "aws.amazon.com",
                    "hostname": "aws.amazon.com",
                    "favicon": "https://imgs.search.brave.com/aws-favicon",
                    "path": "› what-is  › retrieval-augmented-generation",
                },
                **_BRAVE_RESULT_META,
            },
            {
                "title": "What is retrieval-augmented generation? | IBM Research",
                "url": "https://research.ibm.com/blog/retrieval-augmented-generation-RAG",
                "description": "RAG is an AI framework for retrieving facts from an external "
                "knowledge base to ground large language models.",
                "page_age": "2023-08-22T00:00:00",
                "age": "August 22, 2023",
                "profile": {
                    "name": "IBM",
                    "url": "https://research.ibm.com/blog/retrieval-augmented-generation-RAG",
                    "long_name": "research.ibm.com",
                    "img": "https://imgs.search.brave.com/ibm-favicon",
                },
                "meta_url": {
                    "scheme": "https",
                    "netloc": "research.ibm.com",
                    "hostname": "research.ibm.com",
                    "favicon": "https://imgs.search.brave.com/ibm-favicon",
                    "path": "› blog  › retrieval-augmented-generation-RAG",
                },
                **_BRAVE_RESULT_META,
            },
        ],
        "family_friendly": True,
    },
}

_EXA: dict[str, Any] = {
    "requestId": "b5947044c4b78efa9552a7c89b306d95",
    "resolvedSearchType": "neural",
    "searchType": "auto",
    "results": [
        {
            "id": "https://arxiv.org/abs/2005.11401",
            "title": "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
            "url": "https://arxiv.org/abs/2005.11401",
            "publishedDate": "2020-05-22T00:00:00.000Z",
            "author": "Patrick Lewis, Ethan Perez, Aleksandra Piktus",
            "score": 0.3967,
            "image": "https://arxiv.org/static/browse/0.3.4/images/arxiv-logo-fb.png",
            "favicon": "https://arxiv.org/static/browse/0.3.4/images/icons/favicon-32x32.png",
            "highlights": [
                "We explore a general-purpose fine-tuning recipe for retrieval-augmented "
                "generation (RAG) — models which combine pre-trained parametric and "
                "non-parametric memory for language generation."
            ],
            "highlightScores": [0.6127],
        },
        {
            "id": "https://www.pinecone.io/learn/retrieval-augmented-generation/",
            "title": "Retrieval-Augmented Generation (RAG) | Pinecone",
            "url": "https://www.pinecone.io/learn/retrieval-augmented-generation/",
            "publishedDate": "2023-06-06T00:00:00.000Z",
            "author": None,
            "score": 0.3791,
            "highlights": [
                "Retrieval-augmented generation (RAG) gives a model the relevant context it "
                "needs at query time."
            ],
            "highlightScores": [0.5512],
        },
        {
            "id": "https://blogs.nvidia.com/blog/what-is-retrieval-augmented-generation/",
            "title": "What Is Retrieval-Augmented Generation aka RAG | NVIDIA Blogs",
            "url": "https://blogs.nvidia.com/blog/what-is-retrieval-augmented-generation/",
            "publishedDate": "2023-11-15T16:00:18.000Z",
            "author": "Rick Merritt",
            "highlights": [],
            "highlightScores": [],
            "summary": "Retrieval-augmented generation enhances the accuracy and reliability "
            "of generative AI models with facts fetched from external sources.",
        },
    ],
    "costDollars": {"total": 0.006, "search": {"neural": 0.005}, "contents": {"highlights": 0.001}},
}

_BOCHA_PAGE_META = {
    "cachedPageUrl": None,
    "language": None,
    "isFamilyFriendly": None,
    "isNavigational": None,
}

_BOCHA: dict[str, Any] = {
    "code": 200,
    "log_id": "d71841ad20095f61",
    "msg": None,
    "data": {
        "_type": "SearchResponse",
        "queryContext": {"originalQuery": QUERY_ZH},
        "webPages": {
            "webSearchUrl": "",
            "totalEstimatedMatches": 8912791,
            "value": [
                {
                    "id": None,
                    "name": "阿里巴巴发布2024年ESG报告　持续推进减碳与数字化普惠",
                    "url": "https://www.alibabagroup.com/document-1752073403914780672",
                    "displayUrl": "https://www.alibabagroup.com/document-1752073403914780672",
                    "snippet": "阿里巴巴集团发布《2024财年环境、社会和治理（ESG）报告》"
                    "（下称“报告”），详细分享过去一年在ESG各方面取得的进展。",
                    "summary": "阿里巴巴集团发布《2024财年环境、社会和治理（ESG）报告》，"
                    "报告显示，阿里巴巴扎实推进减碳举措，全集团自身运营净碳排放和价值链碳排放强度实现“双降”。",
                    "siteName": "www.alibabagroup.com",
                    "siteIcon": "https://th.bochaai.com/favicon?domain_url=https://www.alibabagroup.com/document-1752073403914780672",
                    "datePublished": "2024-07-22T00:00:00+08:00",
                    "dateLastCrawled": "2024-07-22T00:00:00Z",
                    **_BOCHA_PAGE_META,
                },
                {
                    "id": None,
                    "name": "阿里巴巴发布2024年ESG报告，阿里云数据中心清洁能源占比达56.0%",
                    "url": "http://tech.cnr.cn/techph/20240722/t20240722_526807992.shtml",
                    "displayUrl": "http://tech.cnr.cn/techph/20240722/t20240722_526807992.shtml",
                    "snippet": "阿里巴巴自身运营减少碳排放量达232.0万吨，"
                    "相比上一财年显著提升63.5%，"
                    "其中，阿里云自建数据中心电力使用效率（PUE）从 2023财年1.215降至1.2...",
                    "summary": "阿里巴巴集团发布《环境、社会和治理报告（2024）》提及，"
                    "阿里巴巴自身运营减少碳排放量达232.0万吨，阿里云数据中心清洁能源占比达56.0%。",
                    "siteName": "央广网",
                    "siteIcon": "https://th.bochaai.com/favicon?domain_url=http://tech.cnr.cn/techph/20240722/t20240722_526807992.shtml",
                    "datePublished": "2024-07-22T17:54:38+08:00",
                    "dateLastCrawled": "2024-07-22T17:54:38Z",
                    **_BOCHA_PAGE_META,
                },
                {
                    "id": None,
                    "name": "186页|阿里巴巴：2024年环境、社会和治理（ESG）报告",
                    "url": "https://m.sohu.com/a/815036254_121819701/?pvid=000115_3w_a",
                    "displayUrl": "https://m.sohu.com/a/815036254_121819701/?pvid=000115_3w_a",
                    "snippet": "阿里巴巴集团的2024年环境、社会和治理（ESG）报告"
                    "涵盖了公司在可持续发展方面的多项进展和成就。",
                    "summary": "",
                    "siteName": "搜狐网",
                    "siteIcon": "https://th.bochaai.com/favicon?domain_url=https://m.sohu.com/a/815036254_121819701/?pvid=000115_3w_a",
                    "dateLastCrawled": "2024-11-07T06:50:00Z",
                    **_BOCHA_PAGE_META,
                },
            ],
            "someResultsRemoved": True,
        },
        "images": None,
        "videos": None,
    },
}

_BING: dict[str, Any] = {
    "_type": "SearchResponse",
    "queryContext": {"originalQuery": QUERY},
    "webPages": {
        "webSearchUrl": "https://www.bing.com/search?q=what+is+retrieval-augmented+generation",
        "totalEstimatedMatches": 2510000,
        "value": [
            {
                "id": "https://api.bing.microsoft.com/api/v7/#WebPages.0",
                "name": "Retrieval-augmented generation - Wikipedia",
                "url": "https://en.wikipedia.org/wiki/Retrieval-augmented_generation",
                "isFamilyFriendly": True,
                "displayUrl": "https://en.wikipedia.org/wiki/Retrieval-augmented_generation",
                "snippet": "Retrieval-augmented generation (RAG) is a technique that enables "
                "large language models (LLMs) to retrieve and incorporate new information.",
                "dateLastCrawled": "2025-07-30T06:41:00.0000000Z",
                "language": "en",
                "isNavigational": False,
            },
            {
                "id": "https://api.bing.microsoft.com/api/v7/#WebPages.1",
                "name": "What is retrieval-augmented generation? - IBM Research",
                "url": "https://research.ibm.com/blog/retrieval-augmented-generation-RAG",
                "isFamilyFriendly": True,
                "displayUrl": "https://research.ibm.com/blog/retrieval-augmented-generation-RAG",
                "snippet": "RAG is an AI framework for retrieving facts from an external "
                "knowledge base to ground large language models (LLMs).",
                "datePublished": "2023-08-22T00:00:00.0000000",
                "dateLastCrawled": "2025-07-28T11:02:00.0000000Z",
                "language": "en",
                "isNavigational": False,
            },
            {
                "id": "https://api.bing.microsoft.com/api/v7/#WebPages.2",
                "name": "What is RAG? - Retrieval-Augmented Generation AI Explained - AWS",
                "url": "https://aws.amazon.com/what-is/retrieval-augmented-generation/",
                "isFamilyFriendly": True,
                "displayUrl": "https://aws.amazon.com/what-is/retrieval-augmented-generation",
                "snippet": "Retrieval-Augmented Generation (RAG) is the process of optimizing "
                "the output of a large language model.",
                "dateLastCrawled": "2025-07-29T02:15:00.0000000Z",
                "language": "en",
                "isNavigational": False,
            },
        ],
    },
    "rankingResponse": {
        "mainline": {
            "items": [
                {
                    "answerType": "WebPages",
                    "resultIndex": i,
                    "value": {"id": f"https://api.bing.microsoft.com/api/v7/#WebPages.{i}"},
                }
                for i in range(3)
            ]
        }
    },
}


def _searxng_result(url: str, title: str, content: str, engines: list[str]) -> dict[str, Any]:
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    return {
        "url": url,
        "title": title,
        "content": content,
        "publishedDate": None,
        "thumbnail": None,
        "engine": engines[0],
        "template": "default.html",
        "parsed_url": [scheme, host, "/" + path, "", "", ""],
        "img_src": "",
        "priority": "",
        "engines": engines,
        "positions": list(range(1, len(engines) + 1)),
        "score": float(2 * len(engines)),
        "category": "general",
    }


_SEARXNG: dict[str, Any] = {
    "query": QUERY,
    "number_of_results": 0,
    "results": [
        _searxng_result(
            "https://en.wikipedia.org/wiki/Retrieval-augmented_generation",
            "Retrieval-augmented generation - Wikipedia",
            "Retrieval-augmented generation (RAG) is a technique that enables large language "
            "models (LLMs) to retrieve and incorporate new information.",
            ["duckduckgo", "brave", "startpage"],
        ),
        _searxng_result(
            "https://aws.amazon.com/what-is/retrieval-augmented-generation/",
            "What is RAG? - Retrieval-Augmented Generation AI Explained - AWS",
            "Retrieval-Augmented Generation (RAG) is the process of optimizing the output of a "
            "large language model.",
            ["duckduckgo", "startpage"],
        ),
        _searxng_result(
            "https://research.ibm.com/blog/retrieval-augmented-generation-RAG",
            "What is retrieval-augmented generation? - IBM Research",
            "RAG is an AI framework for retrieving facts from an external knowledge base.",
            ["brave"],
        ),
    ],
    "answers": [],
    "corrections": [],
    "infoboxes": [],
    "suggestions": ["rag llm", "retrieval augmented generation paper"],
    "unresponsive_engines": [["google", "timeout"]],
}
_SEARXNG["results"][2]["publishedDate"] = "2023-08-22T00:00:00"

_RESPONSES: dict[str, dict[str, Any]] = {
    "tavily": _TAVILY,
    "brave": _BRAVE,
    "exa": _EXA,
    "bocha": _BOCHA,
    "bing": _BING,
    "searxng": _SEARXNG,
}

#: where each API keeps its result list, and the field holding a result's URL
RESULT_PATHS: dict[str, tuple[tuple[str, ...], str]] = {
    "tavily": (("results",), "url"),
    "brave": (("web", "results"), "url"),
    "exa": (("results",), "url"),
    "bocha": (("data", "webPages", "value"), "url"),
    "bing": (("webPages", "value"), "url"),
    "searxng": (("results",), "url"),
}

#: the path each API is called on, relative to its base URL
API_PATHS: dict[str, str] = {
    "tavily": "/search",
    "brave": "/res/v1/web/search",
    "exa": "/search",
    "bocha": "/v1/web-search",
    "bing": "/v7.0/search",
    "searxng": "/search",
}

#: the error body each API sends for a refused key, with the status it uses
AUTH_ERRORS: dict[str, tuple[int, Any]] = {
    "tavily": (401, {"detail": {"error": "Unauthorized: missing or invalid API key."}}),
    "brave": (
        422,
        {
            "type": "ErrorResponse",
            "error": {
                "id": "5d4b8b4e-1a3c-4f0e-9b7d-2c1e0f9a8b7c",
                "status": 422,
                "code": "SUBSCRIPTION_TOKEN_INVALID",
                "detail": "The provided subscription token is invalid.",
                "meta": {"component": "authentication"},
            },
            "time": 1741569952,
        },
    ),
    "exa": (401, {"requestId": "6f1e3c2a9d8b7e6f", "error": "Invalid API key"}),
    "bocha": (401, {"code": "401", "message": "Invalid API KEY", "log_id": "c66aac8e5af3b7f9"}),
    "bing": (
        401,
        {
            "error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API "
                "endpoint. Make sure to provide a valid key for an active subscription and use "
                "a correct regional API endpoint for your resource.",
            }
        },
    ),
}

#: rate-limit bodies (sent with 429 and a Retry-After header)
RATE_LIMIT_ERRORS: dict[str, Any] = {
    "tavily": {
        "detail": {
            "error": "Your request has been blocked due to excessive requests. Please reduce "
            "rate of requests."
        }
    },
    "brave": {
        "type": "ErrorResponse",
        "error": {
            "id": "0e4c1f7a-5b2d-4c8e-9a1f-3d6b7e8c9a0b",
            "status": 429,
            "code": "RATE_LIMITED",
            "detail": "Request rate limit exceeded for plan.",
            "meta": {
                "plan": "Free",
                "rate_limit": 1,
                "rate_current": 2,
                "component": "rate_limiter",
            },
        },
        "time": 1741569952,
    },
    "exa": {"requestId": "0a9b8c7d6e5f", "error": "Rate limit exceeded"},
    "bocha": {"code": "429", "message": "You have reached the request limit", "log_id": "a1b2"},
    "bing": {
        "error": {"code": "429", "message": "Rate limit is exceeded. Try again in 2 seconds."}
    },
    "searxng": None,
}

#: Bocha answers a used-up balance with 403 and this body
BOCHA_NO_BALANCE = {"code": "403", "message": "You do not have enough money", "log_id": "9f8e"}


def search_response(provider: str, urls: list[str] | None = None) -> dict[str, Any]:
    """A fresh copy of ``provider``'s recorded answer; with ``urls``, its first results point
    there instead (and only those are kept) — for tests that fetch the result pages."""
    data = copy.deepcopy(_RESPONSES[provider])
    if urls is None:
        return data
    path, field = RESULT_PATHS[provider]
    holder: Any = data
    for key in path[:-1]:
        holder = holder[key]
    results = holder[path[-1]][: len(urls)]
    for result, url in zip(results, urls, strict=False):
        result[field] = url
        if "id" in result and provider == "exa":
            result["id"] = url
    holder[path[-1]] = results
    return data


__all__ = [
    "API_PATHS",
    "AUTH_ERRORS",
    "BOCHA_NO_BALANCE",
    "QUERY",
    "QUERY_ZH",
    "RATE_LIMIT_ERRORS",
    "RESULT_PATHS",
    "search_response",
]
