"""Audio and subtitle streams travel from the source to the output untouched, interleaved with the new video."""

from __future__ import annotations

from pathlib import Path

import av

FALLBACK_AUDIO_ENCODER = {"webm": "libopus"}  # every other container we write takes AAC


class StreamCopier:
    """Copies a source's audio and subtitle packets into an output container, up to a given time.

    It reads the source through its own demuxer, so it needs no help from the video decoder and holds
    only the packets of one time step in memory, however long the video.
    """

    def __init__(self, source: Path, output: av.container.OutputContainer) -> None:
        self.notes: list[str] = []
        self._input = av.open(str(source), "r")
        self._output = output
        self._targets: dict[int, av.stream.Stream] = {}
        self._reencoded: set[int] = set()
        for stream in self._input.streams:
            if stream.type in ("audio", "subtitle"):
                self._add_stream(stream)
        sources = [self._input.streams[index] for index in self._targets]
        self._packets = self._input.demux(sources) if sources else iter(())
        self._pending = None
        self._open = True

    def _add_stream(self, stream) -> None:
        codec = stream.codec_context.name
        if codec in self._output.supported_codecs:
            self._targets[stream.index] = self._output.add_stream_from_template(stream)
        elif stream.type == "audio":
            encoder = FALLBACK_AUDIO_ENCODER.get(self._output.format.name.split(",")[0], "aac")
            out = self._output.add_stream(encoder, rate=stream.codec_context.sample_rate)
            out.layout = stream.codec_context.layout
            self._targets[stream.index] = out
            self._reencoded.add(stream.index)
            self.notes.append(f"audio stream {stream.index} ({codec}) re-encoded to {encoder}: "
                              f"{self._output.format.name} cannot hold {codec}")
        else:
            self.notes.append(f"subtitle stream {stream.index} ({codec}) dropped: "
                              f"{self._output.format.name} cannot hold {codec}; try .mkv")
        if stream.index in self._targets and stream.language:
            self._targets[stream.index].metadata["language"] = stream.language

    def copy_until(self, seconds: float | None) -> None:
        """Mux every packet that starts before `seconds` (all that remain when None)."""
        while self._open:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._finish_encoders()
                return
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's end-of-stream marker
            start = packet.pts if packet.pts is not None else packet.dts
            if seconds is not None and float(start * packet.time_base) > seconds:
                self._pending = packet
                return
            self._mux(packet)

    def _mux(self, packet) -> None:
        index = packet.stream.index
        target = self._targets[index]
        if index not in self._reencoded:
            packet.stream = target
            self._output.mux(packet)
            return
        for frame in packet.decode():
            self._output.mux(target.encode(frame))

    def _finish_encoders(self) -> None:
        for index in self._reencoded:
            self._output.mux(self._targets[index].encode(None))
        self.close()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._input.close()
