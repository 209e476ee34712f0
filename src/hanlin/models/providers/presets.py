"""Endpoints that speak the OpenAI chat-completions protocol: base URL, key variable, models.

Prices are per 1M tokens in the currency the provider bills (CNY for the mainland platforms),
from each provider's public price page as of 2025-11; ``None`` means not published in a form we
could check — set it yourself under ``[models.prices]`` in ``hanlin.toml``. Context lengths are
the provider's documented maximum input window.
"""

from __future__ import annotations

from hanlin.models.base import Endpoint, ModelInfo, Price


def _usd(i: float, o: float, cached: float | None = None) -> Price:
    return Price(i, o, cached, "USD")


def _cny(i: float, o: float, cached: float | None = None) -> Price:
    return Price(i, o, cached, "CNY")


def _chat(name: str, context: int, price: Price | None, **kw: bool) -> ModelInfo:
    return ModelInfo(name, context, price, "chat", **kw)


def _embed(name: str, context: int, price: Price | None, dim: int) -> ModelInfo:
    return ModelInfo(name, context, price, "embedding", supports_tools=False, dim=dim)


def _rerank(name: str, context: int, price: Price | None = None) -> ModelInfo:
    return ModelInfo(name, context, price, "rerank", supports_tools=False)


def _local(name: str, url: str, doc: str, description: str, dialect: str = "openai") -> Endpoint:
    return Endpoint(
        name,
        "openai_compat",
        url,
        None,
        (),
        dialect,
        description,
        doc,
        open_model_list=True,
    )


PRESETS: tuple[Endpoint, ...] = (
    Endpoint(
        "openai",
        "openai_compat",
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        (
            _chat("gpt-5", 400_000, _usd(1.25, 10.0, 0.125), supports_images=True),
            _chat("gpt-5-mini", 400_000, _usd(0.25, 2.0, 0.025), supports_images=True),
            _chat("gpt-4.1", 1_047_576, _usd(2.0, 8.0, 0.5), supports_images=True),
            _chat("gpt-4.1-mini", 1_047_576, _usd(0.4, 1.6, 0.1), supports_images=True),
            _chat("gpt-4o", 128_000, _usd(2.5, 10.0, 1.25), supports_images=True),
            _chat("gpt-4o-mini", 128_000, _usd(0.15, 0.6, 0.075), supports_images=True),
            _embed("text-embedding-3-small", 8191, _usd(0.02, 0.0), 1536),
            _embed("text-embedding-3-large", 8191, _usd(0.13, 0.0), 3072),
        ),
        "openai",
        "OpenAI",
        "https://openai.com/api/pricing/",
    ),
    Endpoint(
        "deepseek",
        "openai_compat",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        (
            _chat("deepseek-chat", 128_000, _cny(2.0, 3.0, 0.2)),
            _chat("deepseek-reasoner", 128_000, _cny(2.0, 3.0, 0.2), supports_tools=False),
        ),
        "deepseek",
        "DeepSeek",
        "https://api-docs.deepseek.com/zh-cn/quick_start/pricing",
    ),
    Endpoint(
        "qwen",
        "openai_compat",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        (
            _chat("qwen3-max", 262_144, _cny(6.0, 24.0)),
            _chat("qwen-max", 32_768, _cny(2.4, 9.6)),
            _chat("qwen-plus", 131_072, _cny(0.8, 2.0, 0.16)),
            _chat("qwen-turbo", 1_000_000, _cny(0.3, 0.6, 0.06)),
            _chat("qwen-vl-plus", 131_072, _cny(1.5, 4.5), supports_images=True),
            _embed("text-embedding-v4", 8192, _cny(0.5, 0.0), 1024),
            _embed("text-embedding-v3", 8192, _cny(0.5, 0.0), 1024),
        ),
        "openai",
        "Qwen on Alibaba Cloud Bailian (DashScope), OpenAI-compatible mode",
        "https://help.aliyun.com/zh/model-studio/models",
    ),
    Endpoint(
        "zhipu",
        "openai_compat",
        "https://open.bigmodel.cn/api/paas/v4",
        "ZHIPUAI_API_KEY",
        (
            _chat("glm-4.6", 200_000, _cny(2.0, 8.0, 0.4)),
            _chat("glm-4.5-air", 128_000, _cny(0.8, 2.0, 0.16)),
            _chat("glm-4-plus", 128_000, _cny(5.0, 5.0)),
            _chat("glm-4-flash", 128_000, _cny(0.0, 0.0)),
            _chat("glm-4v-plus", 8192, _cny(4.0, 4.0), supports_images=True),
            _embed("embedding-3", 8192, _cny(0.5, 0.0), 2048),
        ),
        "no_stream_options",
        "Zhipu GLM (BigModel open platform)",
        "https://open.bigmodel.cn/pricing",
    ),
    Endpoint(
        "moonshot",
        "openai_compat",
        "https://api.moonshot.cn/v1",
        "MOONSHOT_API_KEY",
        (
            _chat("kimi-k2-0905-preview", 262_144, _cny(4.0, 16.0, 1.0)),
            _chat("kimi-k2-turbo-preview", 262_144, _cny(8.0, 58.0, 1.0)),
            _chat("moonshot-v1-8k", 8192, _cny(2.0, 10.0)),
            _chat("moonshot-v1-32k", 32_768, _cny(5.0, 20.0)),
            _chat("moonshot-v1-128k", 131_072, _cny(10.0, 30.0)),
        ),
        "moonshot",
        "Moonshot AI (Kimi)",
        "https://platform.moonshot.cn/docs/pricing/chat",
    ),
    Endpoint(
        "qianfan",
        "openai_compat",
        "https://qianfan.baidubce.com/v2",
        "QIANFAN_API_KEY",
        (
            _chat("ernie-4.5-turbo-128k", 131_072, _cny(0.8, 3.2)),
            _chat("ernie-x1-turbo-32k", 32_768, _cny(1.0, 4.0), supports_tools=False),
            _chat("ernie-speed-128k", 131_072, _cny(0.0, 0.0)),
            _chat("ernie-4.5-vl-32k", 32_768, _cny(3.0, 9.0), supports_images=True),
            _embed("embedding-v1", 384, _cny(0.5, 0.0), 384),
            _rerank("bce-reranker-base", 512, _cny(0.5, 0.0)),
        ),
        "openai",
        "Baidu AI Cloud Qianfan (ERNIE), v2 OpenAI-compatible API; "
        "the key is a bce-v3 bearer token",
        "https://cloud.baidu.com/doc/qianfan-docs/s/Jm8r1826a",
    ),
    Endpoint(
        "ark",
        "openai_compat",
        "https://ark.cn-beijing.volces.com/api/v3",
        "ARK_API_KEY",
        (
            _chat("doubao-seed-1-6-250615", 262_144, _cny(0.8, 8.0, 0.16), supports_images=True),
            _chat("doubao-1-5-pro-32k-250115", 32_768, _cny(0.8, 2.0, 0.16)),
            _chat("doubao-1-5-lite-32k-250115", 32_768, _cny(0.3, 0.6, 0.06)),
            _embed("doubao-embedding-text-240715", 4096, _cny(0.5, 0.0), 2560),
        ),
        "openai",
        "Volcengine Ark (Doubao); model names may also be your endpoint IDs (ep-…)",
        "https://www.volcengine.com/docs/82379/1544106",
        open_model_list=True,
    ),
    Endpoint(
        "hunyuan",
        "openai_compat",
        "https://api.hunyuan.cloud.tencent.com/v1",
        "HUNYUAN_API_KEY",
        (
            _chat("hunyuan-turbos-latest", 32_768, _cny(0.8, 2.0)),
            _chat("hunyuan-lite", 262_144, _cny(0.0, 0.0)),
            _chat("hunyuan-vision", 8192, _cny(18.0, 18.0), supports_images=True),
            _embed("hunyuan-embedding", 1024, _cny(0.7, 0.0), 1024),
        ),
        "openai",
        "Tencent Hunyuan, OpenAI-compatible endpoint",
        "https://cloud.tencent.com/document/product/1729/97731",
    ),
    Endpoint(
        "minimax",
        "openai_compat",
        "https://api.minimaxi.com/v1",
        "MINIMAX_API_KEY",
        (
            _chat("MiniMax-M2", 204_800, _cny(2.1, 8.4, 0.21)),
            _chat("MiniMax-M1", 1_000_000, _cny(0.8, 8.0)),
            _chat("MiniMax-Text-01", 1_000_192, _cny(1.0, 8.0)),
        ),
        "minimax",
        "MiniMax (mainland platform)",
        "https://platform.minimaxi.com/document/price",
    ),
    Endpoint(
        "baichuan",
        "openai_compat",
        "https://api.baichuan-ai.com/v1",
        "BAICHUAN_API_KEY",
        (
            _chat("Baichuan4-Turbo", 32_768, _cny(15.0, 15.0)),
            _chat("Baichuan4-Air", 32_768, _cny(0.98, 0.98)),
            _chat("Baichuan-M2", 32_768, None),
            _embed("Baichuan-Text-Embedding", 512, _cny(0.5, 0.0), 1024),
        ),
        "no_stream_options",
        "Baichuan",
        "https://platform.baichuan-ai.com/price",
    ),
    Endpoint(
        "spark",
        "openai_compat",
        "https://spark-api-open.xf-yun.com/v1",
        "SPARK_API_PASSWORD",
        (
            _chat("4.0Ultra", 32_768, None),
            _chat("max-32k", 32_768, None),
            _chat("generalv3.5", 8192, None),
            _chat("lite", 8192, _cny(0.0, 0.0), supports_tools=False),
        ),
        "no_stream_options",
        "iFlytek Spark (HTTP API); the key is the APIPassword from the console; billed by "
        "token packages, so no per-token price is set",
        "https://www.xfyun.cn/doc/spark/HTTP%E8%B0%83%E7%94%A8%E6%96%87%E6%A1%A3.html",
    ),
    Endpoint(
        "sensenova",
        "openai_compat",
        "https://api.sensenova.cn/compatible-mode/v1",
        "SENSENOVA_API_KEY",
        (
            _chat("SenseNova-V6-5-Pro", 131_072, None, supports_images=True),
            _chat("SenseNova-V6-5-Turbo", 131_072, None, supports_images=True),
            _chat("SenseChat-5", 131_072, None),
        ),
        "openai",
        "SenseTime SenseNova, OpenAI-compatible mode",
        "https://platform.sensenova.cn/doc",
    ),
    Endpoint(
        "siliconflow",
        "openai_compat",
        "https://api.siliconflow.cn/v1",
        "SILICONFLOW_API_KEY",
        (
            _chat("deepseek-ai/DeepSeek-V3.2-Exp", 163_840, _cny(2.0, 3.0)),
            _chat("Qwen/Qwen3-235B-A22B-Instruct-2507", 262_144, _cny(2.5, 10.0)),
            _chat("Qwen/Qwen3-8B", 131_072, _cny(0.0, 0.0)),
            _chat("THUDM/GLM-4-9B-0414", 32_768, _cny(0.0, 0.0)),
            _embed("BAAI/bge-m3", 8192, _cny(0.0, 0.0), 1024),
            _rerank("BAAI/bge-reranker-v2-m3", 8192, _cny(0.0, 0.0)),
        ),
        "openai",
        "SiliconFlow (model aggregator)",
        "https://siliconflow.cn/pricing",
        open_model_list=True,
    ),
    Endpoint(
        "giteeai",
        "openai_compat",
        "https://ai.gitee.com/v1",
        "GITEEAI_API_KEY",
        (
            _chat("DeepSeek-V3", 65_536, None),
            _chat("Qwen3-8B", 32_768, None),
            _embed("bge-m3", 8192, None, 1024),
            _rerank("bge-reranker-v2-m3", 8192),
        ),
        "openai",
        "Gitee AI serverless inference (billed by resource packages)",
        "https://ai.gitee.com/serverless-api",
        open_model_list=True,
    ),
    Endpoint(
        "modelscope",
        "openai_compat",
        "https://api-inference.modelscope.cn/v1",
        "MODELSCOPE_API_KEY",
        (
            _chat("Qwen/Qwen3-32B", 131_072, _cny(0.0, 0.0)),
            _chat("deepseek-ai/DeepSeek-V3.1", 131_072, _cny(0.0, 0.0)),
        ),
        "openai",
        "ModelScope API-Inference (free daily quota; the key is your ModelScope access token)",
        "https://modelscope.cn/docs/model-service/API-Inference/intro",
        open_model_list=True,
    ),
    Endpoint(
        "openrouter",
        "openai_compat",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        (
            _chat("openai/gpt-4o-mini", 128_000, _usd(0.15, 0.6), supports_images=True),
            _chat("anthropic/claude-sonnet-4", 200_000, _usd(3.0, 15.0), supports_images=True),
            _chat("deepseek/deepseek-chat-v3.1", 163_840, _usd(0.2, 0.8)),
            _chat("qwen/qwen3-235b-a22b-2507", 262_144, _usd(0.08, 0.55)),
        ),
        "openai",
        "OpenRouter (model aggregator); any model id from openrouter.ai/models works",
        "https://openrouter.ai/models",
        open_model_list=True,
    ),
    _local("ollama", "http://127.0.0.1:11434/v1", "https://ollama.com", "Ollama on this machine"),
    _local("vllm", "http://127.0.0.1:8000/v1", "https://docs.vllm.ai", "vLLM OpenAI server"),
    _local("sglang", "http://127.0.0.1:30000/v1", "https://docs.sglang.ai", "SGLang server"),
    _local("lmstudio", "http://127.0.0.1:1234/v1", "https://lmstudio.ai", "LM Studio server"),
    _local(
        "llamacpp-server",
        "http://127.0.0.1:8000/v1",
        "https://llama-cpp-python.readthedocs.io",
        "llama-cpp-python's OpenAI-compatible server (python -m llama_cpp.server)",
        "llamacpp_server",
    ),
)
