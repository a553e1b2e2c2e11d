"""Which YUV<->RGB matrix and range to convert with, so colours survive the round trip."""

from __future__ import annotations

from av.video.reformatter import ColorRange, Colorspace

from vsr.io.frames import ColorInfo

# swscale knows these matrices; the other codes share one of them (smpte170m is bt601, bt2020c ~ bt2020nc).
SWSCALE_MATRIX = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.ITU601,
                  7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}
MATRIX_BT709, MATRIX_BT601 = 1, 6
RANGE_TV, RANGE_PC = 1, 2


def assumed_matrix(color: ColorInfo, height: int) -> int:
    """The matrix a player assumes: the tag if there is one, else BT.709 for HD and BT.601 below."""
    if color.matrix in SWSCALE_MATRIX:
        return color.matrix
    return MATRIX_BT709 if height >= 720 else MATRIX_BT601


def swscale_matrix(matrix: int) -> Colorspace:
    return SWSCALE_MATRIX.get(matrix, Colorspace.ITU601)


def swscale_range(range_code: int) -> ColorRange:
    return ColorRange.JPEG if range_code == RANGE_PC else ColorRange.MPEG


def output_color(source: ColorInfo, height: int) -> ColorInfo:
    """Tags for the upscaled video: the source's where it had them, otherwise what a player assumes at `height`.

    Always written out, so that players need not guess at the new resolution.
    """
    matrix = assumed_matrix(source, height)
    primaries = source.primaries if source.primaries != 2 else (1 if matrix == MATRIX_BT709 else 6)
    transfer = source.transfer if source.transfer != 2 else (1 if matrix == MATRIX_BT709 else 6)
    return ColorInfo(matrix=matrix, range=source.range or RANGE_TV, primaries=primaries, transfer=transfer)
