"""``ReferenceRing``: what the speaker played, paired sample for sample with the microphone.

The echo canceller and the double-talk detector learn the echo's delay against this pairing,
so it must not move when the speaker's callback comes late for a while (a sound server runs
the callbacks in bursts, in either order). Played here on a plain tick loop, as
``SoundDeviceDuplex`` drives it: each 20 ms tick the speaker's callback writes its blocks, a
microphone block comes, and every waiting block whose reference is there goes on.
"""

from __future__ import annotations

import numpy as np
from voxloop.voice.devices import DeviceStats, ReferenceRing

RATE = 16000
BLOCK = 320  # 20 ms
SIGNAL = np.random.default_rng(1).permutation(np.r_[-50 * BLOCK : 0, 1 : 50 * BLOCK + 1]).astype(np.int16)
"""What the speaker plays, block after block: 2 s of noise in which no value comes twice (and
none is 0, silence), so any sample of the reference says where it was played."""
SILENCE = np.zeros(BLOCK, dtype=np.int16)


def run(ring: ReferenceRing, writes_per_tick: list[int], silent_blocks: int = 0, give_up_ticks: int = 5) -> tuple[np.ndarray, list[int]]:
    """Each tick the speaker writes that many blocks (0: its callback is late): first
    ``silent_blocks`` of silence, then ``SIGNAL``. Returns the reference of every microphone
    block in order, and how many ticks each waited for it."""
    taken: list[np.ndarray] = []
    waits: list[int] = []
    waiting: list[int] = []  # the tick each waiting microphone block came
    written = 0
    for tick, blocks in enumerate(writes_per_tick):
        for _ in range(blocks):
            k = written - silent_blocks
            ring.write(SIGNAL[k * BLOCK : (k + 1) * BLOCK] if k >= 0 else SILENCE)
            written += 1
        waiting.append(tick)
        while waiting:
            reference = ring.take(BLOCK, force=tick - waiting[0] >= give_up_ticks)
            if reference is None:
                break
            taken.append(reference)
            waits.append(tick - waiting.pop(0))
    return np.concatenate(taken), waits


def offsets(reference: np.ndarray) -> set[int]:
    """Per block of the reference that is not silence, where in the played signal it comes
    from (the pairing's offset: the same for every block while it holds)."""
    found = set()
    for k in range(0, len(reference), BLOCK):
        block = reference[k : k + BLOCK]
        if not block.any():
            continue
        start = int(np.flatnonzero(SIGNAL == block[0])[0])
        assert np.array_equal(SIGNAL[start : start + BLOCK], block), "the reference is not what was played, in order"
        found.add(k - start)
    return found


def test_a_late_speaker_callback_does_not_move_the_pairing() -> None:
    stats = DeviceStats()
    ring = ReferenceRing(RATE, RATE, stats=stats)
    # The microphone runs 3 blocks before the speaker starts. At tick 40 the speaker's callback
    # comes late (at 41 it writes both blocks); from tick 60 it comes a block late for good.
    schedule = [0, 0, 0] + [1] * 37 + [0, 2] + [1] * 18 + [0, 0] + [2] + [1] * 36
    reference, waits = run(ring, schedule)

    assert offsets(reference) == {3 * BLOCK}, "the same played sample pairs with the same microphone sample throughout"
    assert reference[3 * BLOCK :].all(), "no microphone block went without its reference"
    assert waits[40] == 1 and waits[60] == 2 and set(waits[62:]) == {1}, "a block waits while its reference is not written"
    assert stats.reference_shifts == 0


def test_with_a_cushion_late_callbacks_cost_no_wait() -> None:
    stats = DeviceStats()
    ring = ReferenceRing(RATE, RATE, cushion_s=2 * BLOCK / RATE, stats=stats)
    schedule = [0, 0, 0] + [1] * 37 + [0, 2] + [1] * 20 + [0, 0, 3] + [1] * 36
    reference, waits = run(ring, schedule)

    assert offsets(reference) == {5 * BLOCK}, "three blocks before the speaker started, and the two of cushion"
    assert reference[5 * BLOCK :].all()
    assert not any(waits)
    assert stats.reference_shifts == 0


def test_the_pairing_starts_at_the_first_sound_from_what_was_just_written() -> None:
    stats = DeviceStats()
    ring = ReferenceRing(RATE, RATE, stats=stats)
    # The speaker starts by writing 5 blocks of silence ahead at once (a sound server filling
    # its buffer), and its callback is late once. At tick 10 the reply starts: written at
    # tick 10, it must pair with the microphone block of tick 10 (counted from the start it
    # would pair 4 blocks later, after its own echo).
    reference, waits = run(ring, [5] + [1] * 4 + [0, 2] + [1] * 53, silent_blocks=14)

    assert offsets(reference) == {10 * BLOCK}
    assert reference[10 * BLOCK :].all(), "none of the reply is lost"
    assert not any(waits)
    assert stats.reference_shifts == 0


def test_a_speaker_that_stalls_past_its_buffer_moves_the_pairing_once() -> None:
    stats = DeviceStats()
    ring = ReferenceRing(RATE, RATE, stats=stats)
    # 200 ms without the speaker's callback: longer than its buffer, so it played silence
    # meanwhile, and what it writes next is heard that much later.
    reference, waits = run(ring, [1] * 40 + [0] * 10 + [1] * 50, give_up_ticks=5)

    assert stats.reference_shifts == 1
    found = offsets(reference)
    assert len(found) == 2 and min(found) == 0, "one offset before the stall, one after"
    assert max(waits) == 5, "the microphone waited no longer than it was told to"
    assert reference[-40 * BLOCK :].all(), "after the stall the speaker's audio is paired again, none of it skipped"
