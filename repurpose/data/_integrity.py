"""Is an image file whole? Damage (a truncated copy, an empty file, a file that is no image)
found before its pixels are used.

MXNet decodes with OpenCV, whose libjpeg only prints "Premature end of JPEG file" for a
truncated JPEG and fills the rest in grey, and whose libpng error surfaces later, in an
unrelated call. Pillow raises "image file is truncated", but not once
``ImageFile.LOAD_TRUNCATED_IMAGES`` is set (gluoncv sets it when imported). So JPEG and PNG
files, the common case, are checked by their structure, which no flag changes:

- a JPEG is whole when walking its segments and scans from the start reaches its
  end-of-image marker;
- a PNG is whole when walking its chunks reaches its ``IEND`` chunk.

The walks jump from marker to marker (a fraction of a millisecond for a 1 MB file). So
that checking a large folder up front does not read every byte of it, :func:`file_damage`
looks at the end of a file larger than :data:`WALK_LIMIT` first: the end-of-image marker
after the last scan, or the ``IEND`` chunk, in its last few KiB is taken as whole. (A JPEG's
Exif thumbnail, whose own end marker could mislead this, lies in its first 64 KiB.) The read
of each image (:func:`bytes_damage`) walks it all.

Bytes after the end (metadata, a phone's "motion photo" video) are allowed. Other formats
are decoded in full with Pillow's incremental :class:`PIL.ImageFile.Parser`, which reports
an incomplete raw image (BMP, PPM) whatever the flag. This module never sets the flag.
"""
import os
import warnings

from PIL import Image, ImageFile, UnidentifiedImageError

__all__ = ["file_damage", "bytes_damage", "WALK_LIMIT"]

_JPEG_START, _JPEG_SCAN, _JPEG_END = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"
_PNG_START, _PNG_END = b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x00IEND\xaeB`\x82"
_HEAD, _TAIL = 8, 4096
#: Files up to this size (bytes) are read in full when checked; larger ones first by their end.
WALK_LIMIT = 72 * 1024
_TRUNCATED = "it is truncated (no {} at its end)"


def _kind(head):
    if head.startswith(_JPEG_START):
        return "jpeg"
    if head.startswith(_PNG_START):
        return "png"
    return None


def _ends_whole(kind, tail):
    """True when the last bytes show the end of a JPEG or PNG (None: cannot tell)."""
    if kind == "jpeg":
        scan = tail.rfind(_JPEG_SCAN)
        return tail.find(_JPEG_END, scan + 2 if scan >= 0 else 0) >= 0 or None
    return (_PNG_END in tail) or None


def _skip_scan(data, pos):
    """Position of the marker that ends the entropy-coded data from ``pos`` (-1: none)."""
    n = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= n:
            return -1
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte, restart marker
            pos += 2
        elif following == 0xFF:  # fill byte before a marker
            pos += 1
        else:
            return pos


def _jpeg_whole(data):
    """Walk the segments and scans of a JPEG: True if its end-of-image marker is reached."""
    n, pos = len(data), 2
    while True:
        pos = data.find(b"\xff", pos)  # libjpeg skips stray bytes between segments too
        if pos < 0 or pos + 1 >= n:
            return False
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > n:
            return False
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if pos > n:
            return False
        if marker == 0xDA:  # start of scan: its entropy-coded data follows
            pos = _skip_scan(data, pos)
            if pos < 0:
                return False


def _png_whole(data):
    """Walk the chunks of a PNG: True if its ``IEND`` chunk is there in full."""
    n, pos = len(data), len(_PNG_START)
    while pos + 8 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        pos += 12 + length
        if pos > n:
            return False
        if kind == b"IEND":
            return True
    return False


def _decode_damage(data):
    """Decode ``data`` in full with Pillow's incremental parser: why it fails, or None."""
    parser = ImageFile.Parser()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "Truncated File Read": we say it below
            parser.feed(data)
            with parser.close():
                pass
    except Image.DecompressionBombError:
        return None  # very large, not damaged: the decoder decides
    except UnidentifiedImageError:
        return "it is no image of a known format"
    except Exception as err:  # noqa: BLE001 - any failure to decode is the damage we report
        text = str(err).strip() or type(err).__name__
        if text == "cannot parse this image":
            return "it is no image of a known format"
        return f"it is truncated ({text})" if "incomplete" in text else text
    return None


def _damage(kind, tail, read_all):
    if tail is not None and kind and _ends_whole(kind, tail):
        return None
    data = read_all()
    if kind == "jpeg":
        return None if _jpeg_whole(data) else _TRUNCATED.format("end-of-image marker")
    if kind == "png":
        return None if _png_whole(data) else _TRUNCATED.format("IEND chunk")
    return _decode_damage(data)


def file_damage(path):
    """Why the image file ``path`` is damaged, or None if it is whole.

    Reads a JPEG or PNG of up to :data:`WALK_LIMIT` bytes in full and walks it; of a
    larger one first the last few KiB, and all of it only if its end is not there. Files of
    other formats are decoded in full.

    Parameters
    ----------
    path : str

    Returns
    -------
    str or None
        A short reason: ``'it is truncated (no end-of-image marker at its end)'``,
        ``'the file is empty'``, ``'it is no image of a known format'``, ...

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), 'x.jpg')
    >>> Image.new('RGB', (32, 32), 'red').save(path)
    >>> file_damage(path) is None
    True
    >>> with open(path, 'r+b') as handle:
    ...     _ = handle.truncate(os.path.getsize(path) // 3)
    >>> file_damage(path)
    'it is truncated (no end-of-image marker at its end)'
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(_HEAD)
            tail = None
            if size > WALK_LIMIT:
                handle.seek(size - _TAIL)
                tail = handle.read()

            def read_all():
                handle.seek(0)
                return handle.read()
            return "the file is empty" if size == 0 else _damage(_kind(head), tail, read_all)
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"


def bytes_damage(data):
    """Like :func:`file_damage`, for the bytes of a file already read."""
    if not data:
        return "the file is empty"
    return _damage(_kind(data[:_HEAD]), None, lambda: data)
