"""Pure parts of the runtime (no processes): settings, result decoding, the local sources file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from cmfleet.runtime.config import ConfigError, load_config, parse_replicas
from cmfleet.runtime.scheduler import _error_message, _StreamDecoder
from cmfleet.runtime.server import reload_ignores
from cmfleet.runtime.sources import SourcesError, load_sources


def test_replicas_and_module_settings():
    assert parse_replicas("0:4") == (0, 4) and parse_replicas("3") == (3, 3)
    with pytest.raises(ConfigError, match="--replicas: 'x' is not MIN:MAX"):
        parse_replicas("x", "--replicas")
    config = load_config(
        {"dev": {"concurrency": 2, "modules": {"hello": {"replicas": "0:3", "command": ["node", "index.js"]}}}},
        timeout=9,
    )
    hello, other = config.for_module("hello"), config.for_module("other")
    assert (hello.min_replicas, hello.max_replicas, hello.concurrency, hello.timeout) == (0, 3, 2, 9)
    assert hello.command == ("node", "index.js") and other.concurrency == 2 and other.command is None
    with pytest.raises(ConfigError, match=r"pyproject.toml \[tool.cmfleet.dev\].modules.hello: unknown setting"):
        load_config({"dev": {"modules": {"hello": {"replica": "1:2"}}}})


def test_streamed_items_by_chunk_with_a_raw_stream_fallback():
    decoder = _StreamDecoder()
    assert decoder.feed(b"12") == [12]  # one chunk is one item: digits of two chunks never merge
    assert decoder.feed(b'{"a": 1}{"b": 2}') == [{"a": 1}, {"b": 2}]  # a client that merged items
    assert decoder.feed(b'{"c": ') == [] and decoder.feed(b"3}") == [{"c": 3}]  # and one that split an item
    assert decoder.pending == ""
    # the start of a string, a literal or an open object waits for the rest
    assert decoder.feed(b'"abc') == [] and decoder.feed(b'def"') == ["abcdef"]
    assert decoder.feed(b"tr") == [] and decoder.feed(b"ue") == [True]
    assert decoder.feed(b"[1, ") == [] and decoder.feed(b"2]") == [[1, 2]]
    assert decoder.pending == "" and not decoder.text

    # text that is not JSON values (the TS SDK writes strings as they are): the stream is text from then on, each
    # chunk one string item as it came, whitespace and JSON-looking text included
    text = _StreamDecoder()
    assert text.feed(b"Hello") == ["Hello"] and text.feed(b" ") == [" "] and text.feed(b'{"a": 1}') == ['{"a": 1}']
    assert _StreamDecoder().feed(b"123abc") == ["123abc"]  # not 123 then "abc"
    assert _StreamDecoder().feed(b'{"a": 1} and more') == ['{"a": 1} and more']


def test_functions_declared_for_another_languages_module():
    dev = {"modules": {"ts": {"command": ["node", "index.js"], "functions": ["a", {"name": "s", "streaming": True}]}}}
    assert load_config({"dev": dev}).for_module("ts").functions == (("a", False), ("s", True))
    where = r"pyproject.toml \[tool.cmfleet.dev\].modules.ts.functions"
    for bad, message in (
        ("a", where + " must be a list"),
        ([""], where + r"\[0\]: '' is not a function name"),
        (["a", "a"], where + r"\[1\]: 'a' is listed twice"),
        ([{"name": "s", "streaming": "yes"}], where + r"\[0\].streaming must be true or false"),
        ([{"name": "s", "stream": True}], where + r"\[0\]: unknown key\(s\) stream"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_config({"dev": {"modules": {"ts": {"functions": bad}}}})
    with pytest.raises(ConfigError, match=r"functions belongs to one module's own table"):
        load_config({"dev": {"functions": ["a"]}})


def test_sdk_error_results_are_recognised():
    assert _error_message(b'{"exception": "boom: Traceback ..."}') == "boom: Traceback ..."
    assert _error_message(b'{"error": "Unknown query type"}') == "Unknown query type"
    assert _error_message(b'{"error": "TypeError", "reason": "bad"}') == "TypeError: bad"  # the TS SDK's shape
    assert _error_message(b'{"error": "x", "count": 2}') is None  # an ordinary result that has an error key
    assert _error_message(b"[1, 2]") is None


def test_local_sources_file_errors_name_the_table(tmp_path):
    assert load_sources(tmp_path) == []
    (tmp_path / "cmfleet.local.toml").write_text("[sources.Api]\nsecrets = { key = 3 }\n")
    with pytest.raises(SourcesError, match=r"\[sources.Api\].secrets must map names to strings"):
        load_sources(tmp_path)
    (tmp_path / "cmfleet.local.toml").write_text('[sources.Api]\nsecret = { key = "v" }\n')
    with pytest.raises(SourcesError, match="unknown key"):
        load_sources(tmp_path)


@pytest.mark.parametrize(
    "rel, ignored",
    [
        ("modules/pricing/app.py", False),
        ("modules/pricing/pyproject.toml", False),
        ("shared/textkit/src/textkit/words.py", False),
        ("modules/pricing/requirements.lock", False),
        ("modules/pricing/sedfaNCNI", True),  # sed -i's temporary file
        ("modules/pricing/.app.py.swp", True),
        ("modules/pricing/4913", True),  # vim's write test
        ("modules/pricing/.#app.py", True),
        ("modules/pricing/#app.py#", True),
        ("modules/pricing/app.py~", True),
        ("shared/cmfleet/src/cmfleet/_version.py", True),  # hatch-vcs rewrites it on every editable install
        ("modules/pricing/tests/test_pricing.py", True),
    ],
)
def test_hot_reload_ignores_generated_and_editor_temporary_files(rel, ignored):
    assert reload_ignores(Path("/repo") / rel) is ignored


def test_an_env_key_counts_the_interpreter_not_the_link_it_was_reached_through(tmp_path):
    from cmfleet.runtime.environments import EnvSpec

    real = Path(os.path.realpath(sys.executable))
    link = tmp_path / "bin" / "python"
    link.parent.mkdir()
    link.symlink_to(real)  # as a venv's bin/python (hatch's dev env, a tox env) links to the installation
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "m"\n')

    def spec(python: Path, requirements: tuple[str, ...] = ("attrs",)) -> EnvSpec:
        return EnvSpec("m", tmp_path / "env", str(python), requirements, (), (pyproject,))

    before = spec(link).key()
    assert before == spec(real).key()
    assert before != spec(link, ("attrs", "idna")).key()
    pyproject.write_text('[project]\nname = "m"\nversion = "2"\n')  # what the env is made of changed
    assert spec(real).key() != before


def test_job_ids_are_random_uuid4_unique_and_a_forked_child_makes_its_own():
    import uuid

    from cmfleet.runtime.scheduler import new_job_id

    ids = [new_job_id() for _ in range(3000)]  # over several 4 KiB reads of the random source
    assert len(set(ids)) == len(ids)
    for job_id in ids[:300]:
        parsed = uuid.UUID(job_id)
        assert str(parsed) == job_id and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the ids it makes must not be the parent's next ones
        os.close(read)
        os.write(write, ",".join(new_job_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        child = fh.read().split(",")
    os.waitpid(pid, 0)
    parent = [new_job_id() for _ in range(5)]
    assert len(child) == 5 and not set(child) & set(parent)
