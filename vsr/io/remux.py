"""Audio and subtitle streams travel from the source to the output untouched, interleaved with the new video."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from vsr.io.live import WAITING, LiveInput
from vsr.io.tags import carried_tags

FALLBACK_AUDIO_ENCODER = {"webm": "libopus"}  # every other container we write takes AAC

# MPEG-TS lists no codec tags, so FFmpeg's avformat_query_codec cannot answer for it and PyAV's
# supported_codecs names only its defaults (MPEG-2 video, MP2). These are the codecs its muxer gives a stream type.
MPEGTS_CODECS = frozenset({
    "mpeg1video", "mpeg2video", "mpeg4", "h264", "hevc", "vc1", "dirac", "cavs",
    "mp2", "mp3", "aac", "aac_latm", "ac3", "eac3", "dts", "truehd", "opus", "s302m",
    "dvb_subtitle", "dvb_teletext",
})


def container_codecs(output: av.container.OutputContainer) -> frozenset[str]:
    """The codec names (encoder, decoder and format names) that this output container can hold."""
    if output.format.name.split(",")[0] == "mpegts":
        return MPEGTS_CODECS
    return frozenset(output.supported_codecs)


def holds(codecs: frozenset[str], codec: av.Codec) -> bool:
    """Whether a container holding `codecs` (see container_codecs) can hold this encoder's or decoder's format."""
    return codec.name in codecs or codec.canonical_name in codecs


def supported_rate(rate: int, rates: list[int] | tuple[int, ...] | None) -> int:
    """The encoder's sample rate nearest above the source's (Opus takes 48 kHz, not 44.1); the source's if any goes."""
    if not rates or rate in rates:
        return rate
    above = [r for r in rates if r >= rate]
    return min(above) if above else max(rates)


def rescale(value: int, source: Fraction, target: Fraction) -> int:
    """`value` in `source` units as the muxer will store it in `target` units (rounded to nearest, as av_rescale_q)."""
    exact = Fraction(value) * source / target
    return int(exact + Fraction(1, 2)) if exact >= 0 else -int(-exact + Fraction(1, 2))


class _AudioReencoder:
    """Decodes one audio stream and re-encodes it for a container that cannot hold its codec.

    The frames are resampled to a rate, sample format and layout the encoder takes, and cut to the frame size
    it needs: libopus, for one, takes only 48 kHz (among a few lower rates) in frames of 20 ms.
    """

    def __init__(self, stream, output: av.container.OutputContainer, encoder: str) -> None:
        codec = av.Codec(encoder, "w")
        source = stream.codec_context
        rate = supported_rate(source.sample_rate or 48000, codec.audio_rates)
        formats = [f.name for f in codec.audio_formats or ()]
        sample_format = source.format.name if not formats or source.format.name in formats else formats[0]
        layout = source.layout if source.layout.nb_channels else av.AudioLayout("stereo")
        self.target = output.add_stream(encoder, rate=rate, layout=layout, format=sample_format)
        self.target.codec_context.open()  # now, so that a refusal comes before any decoding, and frame_size is known
        context = self.target.codec_context
        variable = context.codec.capabilities & av.codec.codec.Capabilities.variable_frame_size
        frame_size = None if variable or not context.frame_size else context.frame_size
        self._resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate, frame_size=frame_size)
        self._output = output

    def add(self, packet) -> None:
        for frame in packet.decode():
            self._encode(self._resampler.resample(frame))

    def finish(self) -> None:
        self._encode(self._resampler.resample(None))
        self._output.mux(self.target.encode(None))

    def _encode(self, frames) -> None:
        for frame in frames:
            self._output.mux(self.target.encode(frame))


class StreamCopier:
    """Copies a source's audio and subtitle packets into an output container, up to a given time.

    It reads the source through its own demuxer, so it needs no help from the video decoder and holds
    only the packets of one time step in memory, however long the video. Packets whose timestamps would go
    backwards (a damaged source) are dropped, and counted in `dropped`: muxers refuse them.

    A live source (`live`) cannot be read twice: its packets come from the video reader's demuxer instead,
    through `live.side_packets`, as they arrive.
    """

    def __init__(self, source: Path | str, output: av.container.OutputContainer, live: LiveInput | None = None) -> None:
        self.notes: list[str] = []
        self.dropped = 0
        self.source = source
        self._live = live
        self._input = live.container if live is not None else av.open(str(source), "r")
        self._output = output
        self._codecs = container_codecs(output)
        self._targets: dict[int, av.stream.Stream] = {}
        self._reencoders: dict[int, _AudioReencoder] = {}
        self._last_dts: dict[int, int] = {}
        self._open = True
        try:
            for stream in self._input.streams:
                if stream.type in ("audio", "subtitle"):
                    self._add_stream(stream)
        except BaseException:
            self.close()
            raise
        if live is not None:
            live.side_packets.want(set(self._targets))
            self._packets = None
        else:
            sources = [self._input.streams[index] for index in self._targets]
            self._packets = self._input.demux(sources) if sources else iter(())
        self._pending = None

    def _add_stream(self, stream) -> None:
        codec = stream.codec_context.name
        container = self._output.format.name
        if holds(self._codecs, stream.codec_context.codec):
            self._targets[stream.index] = self._output.add_stream_from_template(stream)
        elif stream.type == "audio":
            encoder = FALLBACK_AUDIO_ENCODER.get(container.split(",")[0], "aac")
            try:
                reencoder = _AudioReencoder(stream, self._output, encoder)
            except (av.error.FFmpegError, ValueError) as error:
                raise ValueError(f"audio stream {stream.index} ({codec}) cannot be re-encoded to {encoder}, "
                                 f"which {container} needs: {getattr(error, 'strerror', None) or error}") from None
            self._targets[stream.index] = reencoder.target
            self._reencoders[stream.index] = reencoder
            self.notes.append(f"audio stream {stream.index} ({codec}) re-encoded to {encoder}: "
                              f"{container} cannot hold {codec}")
        else:
            self.notes.append(f"subtitle stream {stream.index} ({codec}) dropped: {container} cannot hold {codec}; "
                              "try .mkv")
        if stream.index in self._targets:
            self._targets[stream.index].metadata.update(carried_tags(stream.metadata))

    def copy_until(self, seconds: float | None) -> None:
        """Mux every packet that starts before `seconds` (all that remain when None)."""
        while self._open:
            packet = self._pending or self._next_packet()
            self._pending = None
            if packet is WAITING:  # a live source: the rest has not arrived yet
                if seconds is not None:
                    return
                packet = None  # the end: the reader has stopped, whatever it had is here
            if packet is None:
                self._finish_encoders()
                return
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's end-of-stream marker
            start = packet.pts if packet.pts is not None else packet.dts
            if seconds is not None and float(start * packet.time_base) > seconds:
                self._pending = packet
                return
            if self._in_order(packet):
                self._mux(packet)

    def _next_packet(self):
        """The next packet to copy; None at the end; WAITING when a live source has sent nothing more yet."""
        if self._live is not None:
            return self._live.side_packets.take()
        return next(self._packets, None)

    def _in_order(self, packet) -> bool:
        """Whether the packet's dts is past its stream's last one, as the muxer will store it (else it is dropped)."""
        index = packet.stream.index
        dts = packet.dts if packet.dts is not None else packet.pts
        if packet.pts is not None and packet.dts is not None and packet.pts < packet.dts:
            self.dropped += 1
            return False
        target = self._targets[index]
        if index not in self._reencoders and target.time_base:
            dts = rescale(dts, packet.time_base, target.time_base)
        last = self._last_dts.get(index)
        if last is not None and dts <= last:
            self.dropped += 1
            return False
        self._last_dts[index] = dts
        return True

    def _mux(self, packet) -> None:
        index = packet.stream.index
        if index in self._reencoders:
            self._reencoders[index].add(packet)
            return
        packet.stream = self._targets[index]
        self._output.mux(packet)

    def _finish_encoders(self) -> None:
        for reencoder in self._reencoders.values():
            reencoder.finish()
        self.close()

    def close(self) -> None:
        if self._open:
            self._open = False
            if self._live is None:  # a live source belongs to its reader
                self._input.close()
