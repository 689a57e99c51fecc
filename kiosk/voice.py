"""Spoken prompts: a WAV file per prompt (kiosk/prompts.py), played by ``aplay`` on the ALSA device.

Why a player process and not QtMultimedia: PySide6-Essentials has no QtMultimedia; PySide6-Addons adds
it at about ten times the size, with an FFmpeg back end that loads codecs and a sound server's client
into the kiosk's own process, where a stuck or missing audio device would stall or crash the window
the citizen is using. ``aplay`` (Debian's alsa-utils, a few hundred kB) plays a WAV on any ALSA device,
also PipeWire's or PulseAudio's through their ALSA plugins; a process the kiosk kills is the simplest
sure way to cut a prompt short, and whatever goes wrong with the sound stays in that process.

Everything here runs on one worker thread: the GUI thread only queues ``cue``/``stop``, so a prompt
never delays the durable write or the page change, and prompts follow one another in order. A new
prompt or a page change kills the one playing (never two at once). The volume is applied by scaling the
samples once, into a private cache of the WAVs. A missing player or a broken device is logged (and
`kiosk doctor` warns), never raised.
"""

from __future__ import annotations

import array
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from core.config import VoiceConfig

from .prompts import PROMPTS

log = logging.getLogger(__name__)

PLAYER = "aplay"
SHIPPED_DIR = Path(__file__).parent / "assets" / "voice"
ESPEAK_VOICE = "cmn"  # espeak-ng's Mandarin
ESPEAK_SPEED = 165  # words a minute: unhurried, for older citizens
SAMPLE_RATE = 16_000


def prompt_dir(config: VoiceConfig) -> Path:
    return config.dir if config.dir is not None else SHIPPED_DIR


def in_quiet_hours(quiet: tuple[int, int] | None, minute_of_day: int) -> bool:
    """Whether ``minute_of_day`` falls in ``(start, end)``, which may span midnight."""
    if quiet is None:
        return False
    start, end = quiet
    if start <= end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


def scaled_wav(source: Path, target: Path, volume: int) -> None:
    """``source`` at ``volume`` percent into ``target``; only 16-bit PCM can be scaled (others are copied)."""
    with wave.open(str(source), "rb") as w:
        params = w.getparams()
        frames = w.readframes(params.nframes)
    if params.sampwidth == 2 and volume != 100:
        samples = array.array("h", frames)
        if sys.byteorder == "big":
            samples.byteswap()
        factor = volume / 100
        samples = array.array("h", (max(-32768, min(32767, int(s * factor))) for s in samples))
        if sys.byteorder == "big":
            samples.byteswap()
        frames = samples.tobytes()
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes(frames)


class Voice:
    """Plays the prompts for one kiosk. ``cue(name)`` and ``stop()`` return at once."""

    def __init__(
        self,
        config: VoiceConfig,
        *,
        minute_of_day: Callable[[], int] | None = None,
        player: str | None = None,
    ):
        self.config = config
        self._minute_of_day = minute_of_day or (
            lambda: (lambda t: t.tm_hour * 60 + t.tm_min)(time.localtime())
        )
        self._player = player or shutil.which(PLAYER)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice")
        self._playing: subprocess.Popen | None = None
        self._cache = Path(tempfile.mkdtemp(prefix="kiosk-voice-"))
        self._files: dict[str, Path] = {}
        self._warned: set[str] = set()
        self.started: list[
            tuple[str, float]
        ] = []  # (prompt, monotonic time its player started): tests, benchmark
        self._closed = False
        if not config.mute and config.volume > 0:
            self._worker.submit(self._prepare)

    # --- called on the GUI thread

    def cue(self, name: str | None) -> Future | None:
        """Stop what is playing and, unless ``name`` is None, muted or in quiet hours, play that prompt."""
        if self._closed:
            return None
        return self._worker.submit(self._play, name)

    def stop(self) -> Future | None:
        return self.cue(None)

    def reconfigure(self, config: VoiceConfig) -> None:
        """New settings (remote settings): from the next prompt on, the files scaled again if need be."""
        if self._closed or config == self.config:
            return
        self._worker.submit(self._reconfigure, config)

    def _reconfigure(self, config: VoiceConfig) -> None:
        old, self.config = self.config, config
        if (config.volume, config.dir) != (old.volume, old.dir) or not self._files:
            self._files = {}
            if not config.mute and config.volume > 0:
                self._prepare()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._worker.submit(self._kill)
        self._worker.shutdown(wait=True)
        shutil.rmtree(self._cache, ignore_errors=True)

    @property
    def silent(self) -> bool:
        """Muted, at volume 0, or in quiet hours now."""
        c = self.config
        return c.mute or c.volume == 0 or in_quiet_hours(c.quiet_hours, self._minute_of_day())

    # --- the worker thread

    def _prepare(self) -> None:
        folder = prompt_dir(self.config)
        for name in PROMPTS:
            source = folder / f"{name}.wav"
            target = self._cache / f"{name}.wav"
            try:
                scaled_wav(source, target, self.config.volume)
            except (OSError, EOFError, wave.Error) as e:
                self._warn_once(f"file:{name}", "voice prompt %s unusable (%s): it is not spoken", source, e)
                continue
            self._files[name] = target

    def _play(self, name: str | None) -> None:
        self._kill()
        if name is None or self.silent:
            return
        path = self._files.get(name)
        if path is None:
            return
        if self._player is None:
            self._warn_once("player", "no %s: voice prompts are not spoken (install alsa-utils)", PLAYER)
            return
        try:
            # Errors to a file, not a pipe: a child of the device's plugin may hold a pipe open long
            # after the player is killed, and the next prompt must not wait for it.
            with open(self._cache / "player.err", "wb") as err:
                self._playing = subprocess.Popen(
                    [self._player, "-q", "-D", self.config.device, str(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
        except OSError as e:
            self._warn_once("start", "cannot start %s: %s", self._player, e)
            return
        self.started.append((name, time.monotonic()))

    def _kill(self) -> None:
        """End the prompt playing (if any) and hear how the last one went."""
        process, self._playing = self._playing, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.returncode not in (0, -9):
            try:
                err = (self._cache / "player.err").read_text(errors="replace").strip()
            except OSError:
                err = ""
            detail = err.splitlines()[-1] if err else f"{self._player} exit {process.returncode}"
            self._warn_once("device", "sound device %s: %s", self.config.device, detail)

    def wait_idle(self, timeout: float = 30) -> None:
        """Wait until the prompt now playing has finished (tests, ``kiosk voice play``)."""
        process = self._worker.submit(lambda: self._playing).result(timeout)
        if process is not None:
            process.wait(timeout)

    def _warn_once(self, key: str, message: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


def check_device(config: VoiceConfig, player: str | None = None) -> str | None:
    """Why prompts cannot be heard on this machine (a `kiosk doctor` warning), or None when a short
    silence plays on the configured device and every prompt file is there."""
    player = player or shutil.which(PLAYER)
    if player is None:
        return f"no {PLAYER} (install alsa-utils)"
    missing = [n for n in PROMPTS if not (prompt_dir(config) / f"{n}.wav").is_file()]
    if missing:
        return f"missing prompt files in {prompt_dir(config)}: {', '.join(missing)}"
    with tempfile.TemporaryDirectory(prefix="kiosk-voice-check-") as tmp:
        silence = Path(tmp) / "silence.wav"
        with wave.open(str(silence), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(b"\0\0" * (SAMPLE_RATE // 20))
        try:
            done = subprocess.run(
                [player, "-q", "-D", config.device, str(silence)], capture_output=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{player} on {config.device}: {e}"
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        return f"{config.device}: {lines[-1] if lines else f'{player} exit {done.returncode}'}"
    return None


def generate(out: Path, *, espeak: str = "espeak-ng") -> list[Path]:
    """The default prompts from their captions with espeak-ng (Mandarin), 16 kHz mono 16-bit WAV."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in PROMPTS.items():
        path = out / f"{name}.wav"
        raw = out / f".{name}.espeak.wav"
        subprocess.run(
            [espeak, "-v", ESPEAK_VOICE, "-s", str(ESPEAK_SPEED), "-w", str(raw), text], check=True
        )
        # sox: resample, and trim espeak's silence at both ends so the prompt starts with the page.
        trim = ["silence", "1", "0.01", "0.5%"]
        subprocess.run(
            [
                "sox",
                str(raw),
                "-r",
                str(SAMPLE_RATE),
                "-c",
                "1",
                "-b",
                "16",
                str(path),
                *trim,
                "reverse",
                *trim,
                "reverse",
            ],
            check=True,
        )
        raw.unlink()
        written.append(path)
    return written


def main(args) -> int:
    """``kiosk voice generate --out DIR`` | ``kiosk voice play NAME`` | ``kiosk voice check``."""
    from core.config import default_config_path, load_config

    if args.voice_command == "generate":
        for path in generate(Path(args.out)):
            print(path)
        return 0
    config_path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    voice_config = load_config(config_path).voice
    if args.voice_command == "check":
        problem = check_device(voice_config)
        print(problem or f"ok: {voice_config.device} plays; prompts in {prompt_dir(voice_config)}")
        return 1 if problem else 0
    if args.name not in PROMPTS:
        print(f"kiosk voice play: unknown prompt {args.name!r}; one of {', '.join(PROMPTS)}", file=sys.stderr)
        return 2
    voice = Voice(voice_config, minute_of_day=lambda: -1)
    try:
        voice.cue(args.name)
        voice.wait_idle()
    finally:
        voice.close()
    return 0
