from __future__ import annotations

import pytest

from vsr.pipeline.windows import chunk_windows


@pytest.mark.parametrize("length", [1, 5, 8, 9, 23])
@pytest.mark.parametrize("size,context", [(1, 0), (4, 0), (4, 2), (3, 5), (8, 1)])
def test_cores_cover_every_item_once_in_order(length, size, context):
    windows = list(chunk_windows(range(length), size, context))
    assert [i for w in windows for i in w.core] == list(range(length))


@pytest.mark.parametrize("size,context", [(4, 2), (3, 5), (1, 3)])
def test_each_core_has_its_context_where_the_sequence_allows(size, context):
    length = 20
    for window in chunk_windows(range(length), size, context):
        first, last = window.core[0], window.core[-1]
        assert window.items == list(range(max(0, first - context), min(length, last + 1 + context)))
        assert len(window.items) <= size + 2 * context


def test_reads_lazily_so_memory_does_not_grow_with_length():
    consumed = []

    def endless():
        index = 0
        while True:
            consumed.append(index)
            yield index
            index += 1

    windows = chunk_windows(endless(), size=4, context=2)
    for _ in range(100):
        window = next(windows)
    assert window.core == [396, 397, 398, 399]
    assert len(consumed) <= 400 + 2 + 1


def test_empty_input_gives_no_window():
    assert list(chunk_windows([], 4, 2)) == []


@pytest.mark.parametrize("size,context", [(0, 0), (4, -1)])
def test_bad_arguments_are_refused(size, context):
    with pytest.raises(ValueError):
        list(chunk_windows(range(3), size, context))


@pytest.mark.parametrize("length", [1, 7, 10])
def test_windows_with_look_ahead_only_start_at_their_core(length):
    """For models that carry their forward state: no item before a core, `context` after it."""
    windows = list(chunk_windows(range(length), 3, context=2, before=0))
    assert [i for w in windows for i in w.core] == list(range(length))
    for window in windows:
        assert window.core_start == 0
        assert window.items == list(range(window.core[0], min(length, window.core[-1] + 3)))
