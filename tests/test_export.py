"""MIDI and WAV export: what is written is what a user's other tools will read back."""

from __future__ import annotations

import os
import wave

import mido
import numpy as np
import pretty_midi
import pytest

from engine.core.atomic import atomic_write
from engine.core.errors import UserError
from engine.music.export import variation_paths, write_midi, write_wav
from engine.music.melody import Melody, Note

PRIMER = Melody(
    (Note(0, 62, 3), Note(3, 64, 1), Note(4, 66, 2), Note(8, 67, 4)),
    12,
    numerator=3,
    denominator=4,
    tempo_qpm=108.0,
    key_number=7,  # G major
    tune_id="jig1",
    title="The Test Jig",
)
CONTINUATION = Melody(
    (Note(0, 69, 2), Note(2, 71, 2), Note(6, 74, 6), Note(12, 72, 12)), 24, 3, 4, 108.0, 7
)


def mido_notes(path) -> list[tuple[int, int, int, str]]:
    """(start tick, end tick, pitch, track name) of every note, read with mido alone."""
    notes = []
    for track in mido.MidiFile(str(path)).tracks:
        name = next((m.name for m in track if m.type == "track_name"), "")
        tick, open_notes = 0, {}
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes[msg.note] = tick
            elif msg.type in ("note_off", "note_on") and msg.note in open_notes:
                notes.append((open_notes.pop(msg.note), tick, msg.note, name))
    return sorted(notes)


def pm_notes(path) -> list[tuple[int, int, int, str]]:
    pm = pretty_midi.PrettyMIDI(str(path))
    tick = pm.time_to_tick
    return sorted((tick(n.start), tick(n.end), n.pitch, inst.name) for inst in pm.instruments for n in inst.notes)


def test_midi_keeps_meter_tempo_key_instrument_and_model_name(tmp_path):
    path = write_midi(tmp_path / "out.mid", CONTINUATION, program=40, track_name="LSTM", primer=PRIMER)
    mid = mido.MidiFile(str(path))
    assert mid.type == 1
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [(ts.numerator, ts.denominator) for ts in pm.time_signature_changes] == [(3, 4)]
    assert pm.get_tempo_changes()[1].tolist() == pytest.approx([108.0], rel=1e-5)  # whole µs per beat
    assert [k.key_number for k in pm.key_signature_changes] == [7]
    assert [(i.name, i.program) for i in pm.instruments] == [("LSTM", 40)]
    # primer inline: the primer's notes first, then the continuation from step 12 on
    pitches = [n.pitch for n in pm.instruments[0].notes]
    assert pitches == [62, 64, 66, 67, 69, 71, 74, 72]
    ticks_per_step = pm.resolution // 4
    assert pm.time_to_tick(pm.instruments[0].notes[4].start) == 12 * ticks_per_step


def test_primer_on_its_own_track_and_continuation_after_it(tmp_path):
    path = write_midi(tmp_path / "two.mid", CONTINUATION, track_name="Transformer", primer=PRIMER, primer_mode="track")
    pm = pretty_midi.PrettyMIDI(str(path))
    names = [i.name for i in pm.instruments]
    assert names == ["Primer: The Test Jig", "Transformer"]
    primer_notes, cont_notes = pm.instruments[0].notes, pm.instruments[1].notes
    assert [n.pitch for n in primer_notes] == [62, 64, 66, 67]
    assert pm.time_to_tick(min(n.start for n in cont_notes)) == 12 * (pm.resolution // 4)
    no_primer = pretty_midi.PrettyMIDI(str(write_midi(tmp_path / "c.mid", CONTINUATION, primer=PRIMER, primer_mode="none")))
    assert no_primer.instruments[0].notes[0].start == 0.0


@pytest.mark.parametrize("mode", ["inline", "track"])
def test_pretty_midi_and_mido_read_back_the_same_notes(tmp_path, mode):
    path = write_midi(tmp_path / "x.mid", CONTINUATION, program=73, track_name="GRU", primer=PRIMER, primer_mode=mode)
    from_pm, from_mido = pm_notes(path), mido_notes(path)
    assert len(from_pm) == 8
    assert from_pm == from_mido
    ticks_per_step = mido.MidiFile(str(path)).ticks_per_beat // 4
    assert from_mido[0][:3] == (0, 3 * ticks_per_step, 62)


def test_wav_is_16_bit_mono_with_the_samples_given(tmp_path):
    samples = (0.5 * np.sin(np.linspace(0, 200 * np.pi, 22050))).astype(np.float32)
    samples[10] = 3.0  # out of range: clipped, never wrapped around
    path = write_wav(tmp_path / "a.wav", samples, 22050)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 22050, 22050)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert data[10] == 32767
    np.testing.assert_allclose(data[100:200] / 32767, samples[100:200], atol=1e-4)


def test_unwritable_paths_get_a_clear_error_and_leave_nothing_behind(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        write_midi(tmp_path / "no" / "such" / "out.mid", CONTINUATION)
    (tmp_path / "folder.mid").mkdir()
    with pytest.raises(UserError, match="folder"):
        write_midi(tmp_path / "folder.mid", CONTINUATION)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match=r"out\.wav"):
        write_wav(tmp_path / "file.txt" / "out.wav", np.zeros(10, np.float32), 8000)
    assert sorted(os.listdir(tmp_path)) == ["file.txt", "folder.mid"]


def test_a_write_that_fails_halfway_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "keep.mid"
    write_midi(target, CONTINUATION)
    good = target.read_bytes()

    def broken(fh):
        fh.write(b"MThd partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match=r"keep\.mid.*No space left"):
        atomic_write(target, broken)
    assert target.read_bytes() == good
    assert os.listdir(tmp_path) == ["keep.mid"]


def test_bad_program_is_refused(tmp_path):
    with pytest.raises(UserError, match="program"):
        write_midi(tmp_path / "p.mid", CONTINUATION, program=128)
    assert not (tmp_path / "p.mid").exists()


def test_variation_paths_number_the_files():
    assert variation_paths("song.mid", 1)[0].name == "song.mid"
    assert [p.name for p in variation_paths("out/song.mid", 3)] == ["song-1.mid", "song-2.mid", "song-3.mid"]


def test_a_durable_write_flushes_the_file_and_its_folder_unless_the_environment_says_not_to(tmp_path, monkeypatch):
    """Checkpoints are written durable (fsync of the file, then of its folder); MELODY_MEMORY_FSYNC=0, which the
    test suite sets, drops only the flushes."""
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    monkeypatch.delenv("MELODY_MEMORY_FSYNC", raising=False)
    atomic_write(tmp_path / "a.bin", b"x", durable=True)
    assert len(synced) == 2 and (tmp_path / "a.bin").read_bytes() == b"x"
    atomic_write(tmp_path / "b.bin", b"y")
    assert len(synced) == 2  # not durable: no flush
    monkeypatch.setenv("MELODY_MEMORY_FSYNC", "0")
    atomic_write(tmp_path / "c.bin", b"z", durable=True)
    assert len(synced) == 2 and (tmp_path / "c.bin").read_bytes() == b"z"
