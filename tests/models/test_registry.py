"""Model files are checked before anything starts: the bundled defaults resolve, and every bad
file a user might name fails at once with one line that gives the path and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from voxloop.models.errors import ModelError, ModelFileError
from voxloop.models.registry import (
    GGUF_MAGIC,
    VoiceFiles,
    resolve_asr,
    resolve_llm,
    resolve_voice,
)

HEAD_BYTES = 200_000
"""How much of a real model file to copy when a test needs one that is large but wrong."""


def head(src: Path, dst: Path, n: int = HEAD_BYTES) -> Path:
    with open(src, "rb") as f:
        dst.write_bytes(f.read(n))
    return dst


def assert_clear(err: ModelFileError, path: Path, *, hint: str, problem: str) -> None:
    message = str(err)
    assert "\n" not in message, message
    assert err.path == path
    assert str(path) in message
    assert problem in message
    assert hint in message
    assert isinstance(err, ModelError)


# --- bundled defaults ---------------------------------------------------------------------------


def test_bundled_asr_resolves_to_a_whisper_folder() -> None:
    path = resolve_asr(None)
    assert path.is_dir()
    assert (path / "model.bin").stat().st_size > 1_000_000
    assert json.loads((path / "config.json").read_text(encoding="utf-8"))
    assert (path / "tokenizer.json").is_file() or (path / "vocabulary.txt").is_file()
    assert resolve_asr("tiny.en") == path


def test_bundled_llm_resolves_to_a_gguf_file() -> None:
    path = resolve_llm(None)
    assert path.is_file() and path.suffix == ".gguf"
    with open(path, "rb") as f:
        assert f.read(4) == GGUF_MAGIC
    assert path.stat().st_size > 1_000_000
    assert resolve_llm("smollm2-135m") == path


def test_bundled_voice_resolves_to_onnx_and_config() -> None:
    voice = resolve_voice(None)
    assert isinstance(voice, VoiceFiles)
    assert voice.model.is_file() and voice.model.suffix == ".onnx"
    assert voice.config.is_file() and voice.config.name == voice.model.name + ".json"
    assert voice.sample_rate == 22050
    assert resolve_voice("en_US-joe-medium") == voice


def test_a_good_model_named_by_path_resolves() -> None:
    # The bundled files pass the same checks when named by path.
    asr = resolve_asr(None)
    assert resolve_asr(str(asr)) == asr
    assert resolve_llm(str(resolve_llm(None))) == resolve_llm(None)
    voice = resolve_voice(None)
    assert resolve_voice(str(voice.model)) == voice


# --- speech recognition ---------------------------------------------------------------------------

ASR_HINT = "--asr-model"


def asr_copy(tmp_path: Path, *, model_bin: bool = True) -> Path:
    """A copy of the bundled ASR folder with a tiny placeholder in place of the weights."""
    src = resolve_asr(None)
    dst = tmp_path / "whisper"
    dst.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    if model_bin:
        head(src / "model.bin", dst / "model.bin", 1000)
    return dst


def test_missing_asr_folder(tmp_path: Path) -> None:
    path = tmp_path / "no-such-model"
    with pytest.raises(ModelFileError) as e:
        resolve_asr(str(path))
    assert_clear(e.value, path, hint=ASR_HINT, problem="no such speech recognition model")


def test_asr_folder_without_model_bin(tmp_path: Path) -> None:
    folder = asr_copy(tmp_path, model_bin=False)
    with pytest.raises(ModelFileError) as e:
        resolve_asr(str(folder))
    assert_clear(e.value, folder / "model.bin", hint=ASR_HINT, problem="missing")


def test_asr_truncated_model_bin(tmp_path: Path) -> None:
    folder = asr_copy(tmp_path)
    with pytest.raises(ModelFileError) as e:
        resolve_asr(str(folder))
    assert_clear(e.value, folder / "model.bin", hint=ASR_HINT, problem="truncated")
    assert "1000 bytes" in str(e.value)


def test_asr_path_that_is_a_file(tmp_path: Path) -> None:
    path = head(resolve_asr(None) / "model.bin", tmp_path / "model.bin")
    with pytest.raises(ModelFileError) as e:
        resolve_asr(str(path))
    assert_clear(e.value, path, hint=ASR_HINT, problem="not a folder")


def test_asr_config_that_is_not_json(tmp_path: Path) -> None:
    folder = asr_copy(tmp_path, model_bin=False)
    head(resolve_asr(None) / "model.bin", folder / "model.bin", 1_100_000)
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFileError) as e:
        resolve_asr(str(folder))
    assert_clear(e.value, folder / "config.json", hint=ASR_HINT, problem="unreadable JSON")


# --- language model ----------------------------------------------------------------------------

LLM_HINT = "--llm-model"


def test_gguf_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "missing.gguf"
    with pytest.raises(ModelFileError) as e:
        resolve_llm(str(path))
    assert_clear(e.value, path, hint=LLM_HINT, problem="no such language model file")


def test_text_file_named_gguf(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    path.write_text("this is not a model\n" * 100_000, encoding="utf-8")  # large, but wrong
    with pytest.raises(ModelFileError) as e:
        resolve_llm(str(path))
    assert_clear(e.value, path, hint=LLM_HINT, problem="not a GGUF file (bad header)")


def test_empty_gguf(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError) as e:
        resolve_llm(str(path))
    assert_clear(e.value, path, hint=LLM_HINT, problem="not a GGUF file")


def test_truncated_gguf(tmp_path: Path) -> None:
    path = head(resolve_llm(None), tmp_path / "cut.gguf", 4096)
    assert path.read_bytes()[:4] == GGUF_MAGIC
    with pytest.raises(ModelFileError) as e:
        resolve_llm(str(path))
    assert_clear(e.value, path, hint=LLM_HINT, problem="truncated")
    assert "4096 bytes" in str(e.value)


def test_directory_given_as_gguf(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.mkdir()
    with pytest.raises(ModelFileError) as e:
        resolve_llm(str(path))
    assert_clear(e.value, path, hint=LLM_HINT, problem="not a file")


# --- voices ---------------------------------------------------------------------------------------

VOICE_HINT = "--voice"


def voice_copy(tmp_path: Path, config_text: str | None) -> Path:
    """A large-enough prefix of the bundled .onnx, with ``config_text`` as its .onnx.json."""
    model = head(resolve_voice(None).model, tmp_path / "en_US-test-medium.onnx")
    if config_text is not None:
        (tmp_path / "en_US-test-medium.onnx.json").write_text(config_text, encoding="utf-8")
    return model


def bundled_config() -> dict:  # type: ignore[type-arg]
    data: dict = json.loads(resolve_voice(None).config.read_text(encoding="utf-8"))  # type: ignore[type-arg]
    return data


def test_a_voice_copy_with_its_config_resolves(tmp_path: Path) -> None:
    model = voice_copy(tmp_path, json.dumps(bundled_config()))
    voice = resolve_voice(str(model))
    assert voice == VoiceFiles(model, tmp_path / "en_US-test-medium.onnx.json", 22050)


def test_voice_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "nobody.onnx"
    with pytest.raises(ModelFileError) as e:
        resolve_voice(str(path))
    assert_clear(e.value, path, hint=VOICE_HINT, problem="no such Piper voice file")


def test_voice_onnx_without_its_json(tmp_path: Path) -> None:
    model = voice_copy(tmp_path, None)
    with pytest.raises(ModelFileError) as e:
        resolve_voice(str(model))
    assert_clear(e.value, Path(str(model) + ".json"), hint=VOICE_HINT, problem="missing")


def test_voice_truncated_onnx(tmp_path: Path) -> None:
    model = head(resolve_voice(None).model, tmp_path / "cut.onnx", 500)
    (tmp_path / "cut.onnx.json").write_text(json.dumps(bundled_config()), encoding="utf-8")
    with pytest.raises(ModelFileError) as e:
        resolve_voice(str(model))
    assert_clear(e.value, model, hint=VOICE_HINT, problem="truncated")


def test_voice_json_that_is_not_json(tmp_path: Path) -> None:
    model = voice_copy(tmp_path, '{"audio": {"sample_rate": 22050')
    with pytest.raises(ModelFileError) as e:
        resolve_voice(str(model))
    assert_clear(e.value, Path(str(model) + ".json"), hint=VOICE_HINT, problem="unreadable JSON")


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"audio": {}},
        {"audio": {"quality": "medium"}},
        {"audio": None},
        {"audio": [22050]},
        {"audio": {"sample_rate": "fast"}},
        {"audio": {"sample_rate": None}},
    ],
    ids=["empty", "no-rate", "other-keys", "audio-null", "audio-list", "rate-text", "rate-null"],
)
def test_voice_json_without_a_sample_rate(tmp_path: Path, config: dict) -> None:  # type: ignore[type-arg]
    model = voice_copy(tmp_path, json.dumps(config))
    with pytest.raises(ModelFileError) as e:
        resolve_voice(str(model))
    assert_clear(e.value, Path(str(model) + ".json"), hint=VOICE_HINT, problem="audio.sample_rate")


def test_voice_json_that_is_not_an_object(tmp_path: Path) -> None:
    model = voice_copy(tmp_path, "[1, 2, 3]")
    with pytest.raises(ModelFileError) as e:
        resolve_voice(str(model))
    assert_clear(e.value, Path(str(model) + ".json"), hint=VOICE_HINT, problem="not a JSON object")
