"""core/idle_pages.py hands back only pages it can read again from the library file: a mapping
with any page written (dirty, anonymous, or written and then swapped out) is never dropped, since
MADV_DONTNEED would bring it back with the file's bytes, its writes (relocations) lost."""

import io

from margin_explorer.core import idle_pages

LIB = "/opt/x/site-packages/llvmlite/binding/libllvmlite.so"


def _mapping(span, perms, path, rss=4, dirty=0, anonymous=0, swap=0):
    return (f"{span} {perms} 00000000 08:01 123                        {path}\n"
            f"Size:                 16 kB\nRss:                {rss:>4} kB\nPrivate_Clean:        {rss} kB\n"
            f"Private_Dirty:      {dirty:>4} kB\nAnonymous:          {anonymous:>4} kB\nSwap:               {swap:>4} kB\n")


SMAPS = "".join([
    _mapping("7f0000000000-7f0000004000", "r-xp", LIB),  # code, never written: the only one to drop
    _mapping("7f0000004000-7f0000008000", "r--p", LIB, dirty=4, anonymous=4),  # relocated, resident
    _mapping("7f0000008000-7f000000c000", "r--p", LIB, swap=12),  # relocated, its written pages in swap
    _mapping("7f000000c000-7f0000010000", "rw-p", LIB),  # writable
    _mapping("7f0000010000-7f0000014000", "r-xp", "/usr/lib/libc.so.6"),  # another library
])


def test_only_mappings_with_no_page_ever_written_are_released(monkeypatch):
    monkeypatch.setattr(idle_pages, "open", lambda *_args, **_kw: io.StringIO(SMAPS), raising=False)
    assert idle_pages.clean_mappings("libllvmlite") == [(0x7F0000000000, 0x7F0000004000, 4096)]
